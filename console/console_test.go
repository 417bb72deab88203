package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/outreach-dev/outreach/console"
	"github.com/outreach-dev/outreach/dashboard"
	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/store"
	"github.com/outreach-dev/outreach/store/storetest"
	"github.com/outreach-dev/outreach/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const user, password = "ops", "s3cret-pass"

// fixture is a seeded database behind a running dashboard with the console.
type fixture struct {
	st    *store.Store
	db    storetest.DB // the test's own, for setup and checks (storetest)
	srv   *httptest.Server
	redis asynq.RedisConnOpt
	// ids of the seeded rows
	anna, ben, partoo, campaign int64
}

// setup seeds three accounts (anna: active with limits and a ledger over
// three days; ben: paused by a 429 with its reason; a disabled Partoo
// account), a campaign of anna's with 130 targets in every status, and
// serves the asynq dashboard with the console under /console behind
// basic auth.
func setup(t *testing.T, readOnly bool) *fixture {
	t.Helper()
	st, db := testenv.StoreDB(t)
	f := &fixture{st: st, db: db}
	seed := storetest.SeedConsole(t, db)
	f.anna, f.ben, f.partoo, f.campaign = seed.Anna, seed.Ben, seed.Partoo, seed.Campaign

	rs := testenv.Redis(t)
	opt, err := asynq.ParseRedisURI(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := console.New(console.Options{Store: st, Prefix: "/console", ReadOnly: readOnly, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	f.redis = opt
	d, err := dashboard.New(dashboard.Options{RedisConnOpt: opt, ReadOnly: readOnly, User: user, Password: password,
		Console: cons, ConsolePath: "/console", TargetLabel: console.TargetLabeler(st, 0)})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(d)
	t.Cleanup(func() {
		f.srv.Close()
		d.Close()
	})
	return f
}

func (f *fixture) accountStatus(t *testing.T, id int64) (status store.AccountStatus, reason string) {
	t.Helper()
	return storetest.AccountState(t, f.db, id)
}

// screenshotDir is OUTREACH_SCREENSHOT_DIR if set, else a temporary
// directory of the test.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("OUTREACH_SCREENSHOT_DIR"); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			t.Fatal(err)
		}
		return abs
	}
	return t.TempDir()
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("headless browser test skipped: /usr/bin/chromium is not installed (scripts/ensure-browser)")
	return ""
}

var spaces = regexp.MustCompile(`\s+`)

// TestConsoleInBrowser opens every page of a writable console in headless
// Chromium against real Postgres, checks what it shows against SQL,
// clicks Pause and Resume and sees the account change in Postgres, and
// saves a screenshot of each page.
func TestConsoleInBrowser(t *testing.T) {
	bin := chromium(t)
	f := setup(t, false)
	dir := screenshotDir(t)
	auth := "Basic " + basicAuth(user, password)
	b := startBrowser(t, bin, map[string]string{"Authorization": auth})
	base := f.srv.URL + "/console"

	// Accounts: anna's budget per window matches the ledger.
	b.open(base + "/")
	b.screenshot(filepath.Join(dir, "console-accounts.png"))
	row := spaces.ReplaceAllString(b.text(fmt.Sprintf("#account-%d", f.anna)), " ")
	for _, w := range []struct {
		action, per string
		max         int
	}{{"invite", "1 day", 25}, {"invite", "7 days", 100}, {"lookup", "1 day", 80}} {
		used := storetest.CountCalls(t, f.db, storetest.Calls{Account: f.anna, Actions: []store.Action{store.Action(w.action)},
			AnsweredWithinInterval: w.per})
		want := fmt.Sprintf("%d/%d · %d left", used, w.max, max(w.max-used, 0))
		if !strings.Contains(row, want) {
			t.Errorf("anna's %s %s window: want %q in the row %q", w.action, w.per, want, row)
		}
	}
	sentDay := storetest.CountCalls(t, f.db, storetest.Calls{Account: f.anna, Actions: []store.Action{store.ActionInvite},
		Outcomes: []store.Outcome{store.OutcomeSent}, AnsweredWithin: 24 * time.Hour})
	if got := b.text(fmt.Sprintf("#account-%d .sent-day", f.anna)); got != strconv.Itoa(sentDay) {
		t.Errorf("anna's invitations sent in the last day = %q; the ledger has %d", got, sentDay)
	}
	// anna's 1-day invitation window is full (31 calls of 25): her next
	// invitation waits for it to free, or for her working hours after that
	// (TestNextInvitation has the rule), not for her 90-second gap.
	if next := b.text(fmt.Sprintf("#account-%d td.next", f.anna)); !strings.Contains(next, "window invite · 25 per 1d full") &&
		!strings.Contains(next, "outside working hours") {
		t.Errorf("anna's next invitation = %q; want it held by her full window (or her working hours)", next)
	}
	// The paused account shows its reason and until when; the disabled one its reason.
	benRow := b.text(fmt.Sprintf("#account-%d", f.ben))
	for _, want := range []string{"paused", "HTTP 429 from Unipile: Retry-After 7200", "until"} {
		if !strings.Contains(benRow, want) {
			t.Errorf("ben's row lacks %q: %q", want, benRow)
		}
	}
	if row := b.text(fmt.Sprintf("#account-%d", f.partoo)); !strings.Contains(row, "HTTP 401: invalid API key") {
		t.Errorf("the disabled account's row lacks its reason: %q", row)
	}

	// Pause anna from the list, as a person would: click, see it in Postgres.
	b.eval(fmt.Sprintf("document.querySelector('#account-%d button.pause').click()", f.anna))
	b.waitFor("location.search.includes('done=paused') && document.readyState === 'complete'")
	if status, reason := f.accountStatus(t, f.anna); status != store.AccountPaused || !strings.Contains(reason, "operator") {
		t.Fatalf("after clicking Pause anna is %s (%q); want paused by an operator", status, reason)
	}
	b.screenshot(filepath.Join(dir, "console-accounts-paused.png"))
	b.eval(fmt.Sprintf("document.querySelector('#account-%d button.resume').click()", f.anna))
	b.waitFor("location.search.includes('done=resumed') && document.readyState === 'complete'")
	if status, _ := f.accountStatus(t, f.anna); status != store.AccountActive {
		t.Fatalf("after clicking Resume anna is %s; want active", status)
	}

	// The account's page: chart, ledger, waiting targets with why.
	b.open(fmt.Sprintf("%s/accounts/%d", base, f.anna))
	b.screenshot(filepath.Join(dir, "console-account.png"))
	page := b.text("main")
	for _, want := range []string{"Invitations per hour", "Waiting targets", "deferred after cannot_resend_yet",
		"queued: its task is in Redis", "Recent calls", "503", "in flight"} {
		if !strings.Contains(page, want) {
			t.Errorf("the account page lacks %q", want)
		}
	}
	if n, _ := b.eval("document.querySelectorAll('svg.chart rect.bar-sent').length").(float64); n == 0 {
		t.Error("the account page's chart has no bars of sent invitations")
	}

	// Campaigns: the counts match SQL.
	b.open(base + "/campaigns")
	b.screenshot(filepath.Join(dir, "console-campaigns.png"))
	b.open(fmt.Sprintf("%s/campaigns/%d", base, f.campaign))
	b.screenshot(filepath.Join(dir, "console-campaign.png"))
	for _, s := range []store.TargetStatus{store.TargetPending, store.TargetQueued, store.TargetSending, store.TargetSent, store.TargetSkipped, store.TargetFailed} {
		want := storetest.CampaignTargetsIn(t, f.db, f.campaign, s)
		if got := b.text("#count-" + string(s)); got != strconv.Itoa(want) {
			t.Errorf("campaign count %s = %q; SQL says %d", s, got, want)
		}
	}
	// Filter by a reason and page through: every failed target once.
	b.open(fmt.Sprintf("%s/campaigns/%d?status=failed&error_type=invalid_recipient", base, f.campaign))
	if n, _ := b.eval("document.querySelectorAll('table.targets tbody tr').length").(float64); int(n) != 12 {
		t.Errorf("failed invalid_recipient targets listed = %v; want 12", n)
	}
	// The target's page: its attempts and its message.
	id := storetest.FirstTarget(t, f.db, f.campaign, store.TargetSent)
	b.open(fmt.Sprintf("%s/targets/%d", base, id))
	b.screenshot(filepath.Join(dir, "console-target.png"))
	page = b.text("main")
	for _, want := range []string{"I enjoyed your post on pricing", "Attempts", "resolved", "sent", "inv_"} {
		if !strings.Contains(page, want) {
			t.Errorf("the target page lacks %q", want)
		}
	}
}

func basicAuth(u, p string) string {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.SetBasicAuth(u, p)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// do sends a request with optional basic auth and headers.
func do(t *testing.T, method, u string, withAuth bool, headers map[string]string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if withAuth {
		req.SetBasicAuth(user, password)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsoleAccess: without credentials every page is refused; a
// cross-site form post is refused; a same-site one works.
func TestConsoleAccess(t *testing.T) {
	f := setup(t, false)
	base := f.srv.URL + "/console"
	pages := []string{"/", "/campaigns", fmt.Sprintf("/accounts/%d", f.anna), fmt.Sprintf("/campaigns/%d", f.campaign),
		fmt.Sprintf("/targets/%d", storetest.FirstTarget(t, f.db, 0, "")), "/static/style.css"}
	for _, p := range pages {
		if code, _ := do(t, "GET", base+p, false, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials = %d; want 401", p, code)
		}
		if code, _ := do(t, "GET", base+p, true, nil, nil); code != http.StatusOK {
			t.Errorf("GET %s with credentials = %d; want 200", p, code)
		}
	}
	pause := fmt.Sprintf("%s/accounts/%d/pause", base, f.anna)
	form := url.Values{"for": {"1h"}}
	if code, _ := do(t, "POST", pause, false, nil, form); code != http.StatusUnauthorized {
		t.Errorf("POST pause without credentials = %d; want 401", code)
	}
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "same-site"},
	} {
		if code, _ := do(t, "POST", pause, true, h, form); code != http.StatusForbidden {
			t.Errorf("cross-site POST pause %v = %d; want 403", h, code)
		}
	}
	if status, _ := f.accountStatus(t, f.anna); status != store.AccountActive {
		t.Fatalf("refused posts changed anna to %s", status)
	}
	same := map[string]string{"Origin": f.srv.URL, "Sec-Fetch-Site": "same-origin"}
	if code, _ := do(t, "POST", pause, true, same, url.Values{"for": {"stop"}}); code != http.StatusSeeOther {
		t.Fatalf("same-origin POST stop = %d; want 303", code)
	}
	if status, _ := f.accountStatus(t, f.anna); status != store.AccountDisabled {
		t.Fatalf("after stop anna is %s; want disabled", status)
	}
}

// TestConsoleReadOnly: a read-only console shows no actions and refuses
// every one, whatever the headers.
func TestConsoleReadOnly(t *testing.T) {
	f := setup(t, true)
	base := f.srv.URL + "/console"
	for _, p := range []string{"/", fmt.Sprintf("/accounts/%d", f.ben)} {
		code, body := do(t, "GET", base+p, true, nil, nil)
		if code != http.StatusOK || strings.Contains(body, "<form method=\"post\"") || !strings.Contains(body, "read-only") {
			t.Errorf("GET %s read-only = %d, shows forms or no read-only mark:\n%.500s", p, code, body)
		}
	}
	same := map[string]string{"Origin": f.srv.URL, "Sec-Fetch-Site": "same-origin"}
	for _, a := range []string{fmt.Sprintf("/accounts/%d/resume", f.ben), fmt.Sprintf("/accounts/%d/pause", f.anna)} {
		if code, _ := do(t, "POST", base+a, true, same, url.Values{"for": {"1h"}}); code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s read-only = %d; want 405", a, code)
		}
	}
	if status, _ := f.accountStatus(t, f.ben); status != store.AccountPaused {
		t.Errorf("ben is %s after a refused resume; want paused", status)
	}
	if status, _ := f.accountStatus(t, f.anna); status != store.AccountActive {
		t.Errorf("anna is %s after a refused pause; want active", status)
	}
}

// TestCampaignTargetsPaging pages through a campaign with every filter and
// sees each matching target exactly once, as SQL counts them.
func TestCampaignTargetsPaging(t *testing.T) {
	f := setup(t, false)
	ctx := context.Background()
	for _, flt := range []store.TargetFilter{{}, {Status: "sent"}, {Status: "failed"}, {ErrorType: "invalid_recipient"},
		{Status: "failed", ErrorType: "too_many_characters"}, {Status: "sending"}} {
		flt.CampaignID, flt.Limit = f.campaign, 7
		seen := map[int64]bool{}
		for page := 0; ; page++ {
			rows, err := f.st.CampaignTargets(ctx, flt)
			if err != nil {
				t.Fatal(err)
			}
			more := len(rows) > flt.Limit
			if more {
				rows = rows[:flt.Limit]
			}
			for _, r := range rows {
				if seen[r.ID] {
					t.Fatalf("%+v: target %d on two pages", flt, r.ID)
				}
				seen[r.ID] = true
			}
			if !more {
				break
			}
			flt.After = rows[len(rows)-1].Identifier
		}
		want := storetest.CampaignTargetsMatching(t, f.db, f.campaign, store.TargetStatus(flt.Status), flt.ErrorType)
		if len(seen) != want {
			t.Errorf("%+v: paged through %d targets; SQL counts %d", flt, len(seen), want)
		}
	}
}

// TestDashboardTaskLabels: the asynq dashboard's task view names a task's
// account and campaign, read from Postgres, and nothing else.
func TestDashboardTaskLabels(t *testing.T) {
	f := setup(t, true)
	id := storetest.FirstTarget(t, f.db, 0, store.TargetQueued)
	client := asynq.NewClient(f.redis)
	defer client.Close()
	task, opts := worker.NewTask(worker.TypeInvite, id)
	if _, err := client.Enqueue(task, opts...); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, "GET", f.srv.URL+"/api/queues/invites/pending_tasks", true, nil, nil)
	want := fmt.Sprintf(`"payload":"%s target_id=%d (account linkedin-anna · campaign Q4 founders)"`, worker.TypeInvite, id)
	if code != http.StatusOK || !strings.Contains(body, want) {
		t.Fatalf("pending tasks = %d; want %s in\n%.1000s", code, want, body)
	}
}

// TestViewerZone: the viewer picks a time zone; times are then shown in it,
// and the form only ever sends the viewer back to a console page.
func TestViewerZone(t *testing.T) {
	f := setup(t, true)
	base := f.srv.URL + "/console"
	req, _ := http.NewRequest("GET", base+"/zone?tz=Asia/Tokyo&back=/console/campaigns", nil)
	req.SetBasicAuth(user, password)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "outreach_tz" {
			ck = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/campaigns" || ck == nil || ck.Value != "Asia/Tokyo" {
		t.Fatalf("set zone: %d, Location %q, cookie %v", resp.StatusCode, resp.Header.Get("Location"), ck)
	}
	req, _ = http.NewRequest("GET", fmt.Sprintf("%s/accounts/%d", base, f.anna), nil)
	req.SetBasicAuth(user, password)
	req.AddCookie(ck)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), " JST") || !strings.Contains(string(body), " CET") {
		t.Errorf("the account page shows no time in the viewer's zone (JST) beside the account's (CET)")
	}
	for _, back := range []string{"https://evil.example/", "//evil.example/", "/elsewhere"} {
		code, _ := do(t, "GET", base+"/zone?tz=UTC&back="+url.QueryEscape(back), true, nil, nil)
		req, _ := http.NewRequest("GET", base+"/zone?tz=UTC&back="+url.QueryEscape(back), nil)
		req.SetBasicAuth(user, password)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
			t.Errorf("back=%q: %d to %q; want 303 to /console/", back, code, resp.Header.Get("Location"))
		}
	}
	if code, _ := do(t, "GET", base+"/zone?tz=Mars/Olympus", true, nil, nil); code != http.StatusBadRequest {
		t.Errorf("an unknown zone = %d; want 400", code)
	}
}
