package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/outreach-dev/outreach/dashboard"
	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// setup starts a throwaway Redis holding real tasks of both types and a
// dashboard over it.
func setup(t *testing.T, o dashboard.Options) *httptest.Server {
	t.Helper()
	rs := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	client := asynq.NewClientFromRedisClient(rdb)
	for id := int64(1); id <= 3; id++ {
		task, opts := worker.NewTask(worker.TypeInvite, id)
		if _, err := client.Enqueue(task, opts...); err != nil {
			t.Fatal(err)
		}
	}
	task, opts := worker.NewTask(worker.TypeResolve, 42)
	if _, err := client.Enqueue(task, opts...); err != nil {
		t.Fatal(err)
	}
	opt, err := asynq.ParseRedisURI(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	o.RedisConnOpt = opt
	d, err := dashboard.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(func() {
		srv.Close()
		d.Close()
	})
	return srv
}

func do(t *testing.T, method, url string, auth ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestQueuesAndPayloads(t *testing.T) {
	t.Parallel()
	srv := setup(t, dashboard.Options{})
	code, body := do(t, "GET", srv.URL+"/api/queues")
	if code != 200 {
		t.Fatalf("GET /api/queues: %d %s", code, body)
	}
	var got struct {
		Queues []struct {
			Queue   string `json:"queue"`
			Pending int    `json:"pending"`
		} `json:"queues"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	pending := map[string]int{}
	for _, q := range got.Queues {
		pending[q.Queue] = q.Pending
	}
	if pending[worker.QueueInvites] != 3 || pending[worker.QueueLookups] != 1 {
		t.Errorf("pending by queue = %v, want invites 3 and lookups 1", pending)
	}

	code, body = do(t, "GET", srv.URL+"/api/queues/invites/pending_tasks")
	if code != 200 {
		t.Fatalf("GET pending_tasks: %d %s", code, body)
	}
	if !strings.Contains(body, `"payload":"invite:send target_id=1"`) || !strings.Contains(body, `"id":"invite:1"`) {
		t.Errorf("pending tasks should show type, id and target id only; got %s", body)
	}

	code, body = do(t, "GET", srv.URL+"/")
	if code != 200 || !strings.Contains(body, "<div id=\"root\">") {
		t.Errorf("GET /: %d, want the asynqmon page; got %.200s", code, body)
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	srv := setup(t, dashboard.Options{User: "ops", Password: "s3cret"})
	for _, tc := range []struct {
		name string
		auth []string
		want int
	}{
		{"no credentials", nil, 401},
		{"wrong password", []string{"ops", "nope"}, 401},
		{"wrong user", []string{"admin", "s3cret"}, 401},
		{"right", []string{"ops", "s3cret"}, 200},
	} {
		code, _ := do(t, "GET", srv.URL+"/api/queues", tc.auth...)
		if code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, code, tc.want)
		}
	}
	if _, err := dashboard.New(dashboard.Options{RedisConnOpt: asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, User: "ops"}); err == nil {
		t.Error("a user without a password should be refused")
	}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	srv := setup(t, dashboard.Options{ReadOnly: true})
	for _, r := range []struct{ method, path string }{
		{"DELETE", "/api/queues/invites/pending_tasks/invite:1"},
		{"POST", "/api/queues/invites:pause"},
		{"DELETE", "/api/queues/lookups?force=true"},
	} {
		code, _ := do(t, r.method, srv.URL+r.path)
		if code < 400 {
			t.Errorf("%s %s on a read-only dashboard: status %d, want a refusal", r.method, r.path, code)
		}
	}
	code, body := do(t, "GET", srv.URL+"/api/queues/invites")
	if code != 200 || !strings.Contains(body, `"pending":3`) || strings.Contains(body, `"paused":true`) {
		t.Errorf("after refused writes the invites queue should be untouched: %d %s", code, body)
	}
	// The writable dashboard does delete: the refusals above are the
	// read-only mode's doing.
	rw := setup(t, dashboard.Options{})
	if code, body := do(t, "DELETE", rw.URL+"/api/queues/invites/pending_tasks/invite:1"); code >= 300 {
		t.Errorf("DELETE on a writable dashboard: %d %s", code, body)
	}
}

func TestFormatPayload(t *testing.T) {
	for _, tc := range []struct{ typ, payload, want string }{
		{"invite:send", `{"target_id":12}`, "invite:send target_id=12"},
		{"target:resolve", `{"target_id":7,"api_key":"sk-live-123","message":"hi"}`, "target:resolve target_id=7"},
		{"invite:send", `{"api_key":"sk-live-123"}`, "invite:send (payload not shown)"},
		{"invite:send", `not json sk-live-123`, "invite:send (payload not shown)"},
		{"invite:send", `{"target_id":"1; sk-live"}`, "invite:send (payload not shown)"},
	} {
		if got := dashboard.FormatPayload(tc.typ, []byte(tc.payload)); got != tc.want {
			t.Errorf("FormatPayload(%q, %s) = %q, want %q", tc.typ, tc.payload, got, tc.want)
		}
	}
}
