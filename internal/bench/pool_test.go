package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
)

// TestRunPoolTiny runs the sender-pool scenario at a tiny size so that it
// cannot rot. It checks what it reports, never how fast.
func TestRunPoolTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline against Postgres and Redis")
	}
	dsn := testenv.DatabaseURL(t)
	rs := testenv.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // seconds when idle; see TestRunTiny
	defer cancel()
	res, err := Run(ctx, Config{DatabaseURL: dsn, RedisURL: rs.URL, Only: []string{"pool"},
		PoolAccounts: 3, PoolDuration: 3 * time.Second, AccuracyWorkers: 1, AccuracyConcurrency: 5,
		Windows: []Window{{Max: 2, Per: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Throughput != nil || res.Accuracy != nil {
		t.Errorf("--only pool ran other scenarios: %+v", res)
	}
	p := res.Pool
	if p == nil || p.Violations != 0 || p.Used == 0 || p.Allowed == 0 || p.Idle != 0 {
		t.Fatalf("pool = %+v, want sends from every sender and no violation", p)
	}
	var b bytes.Buffer
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "sender pool") {
		t.Errorf("table lacks the pool's row:\n%s", b.String())
	}
}
