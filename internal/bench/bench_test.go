package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/internal/testenv"
	"github.com/outreach-dev/outreach/provider/simulator"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRunTiny runs every scenario at a tiny size so that the benchmark
// cannot rot. It checks what the scenarios report, never how fast.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline against Postgres and Redis")
	}
	// The scenarios create their own databases on this server.
	dsn := testenv.DatabaseURL(t)
	rs := testenv.Redis(t)
	bin := filepath.Join(t.TempDir(), "outreach")
	build := exec.Command("go", "build", "-o", bin, "github.com/outreach-dev/outreach/cmd/outreach")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build outreach: %v", err)
	}
	// Every scenario in a few seconds on an idle machine; a CI machine
	// busy with other packages' tests has taken over two minutes (the
	// package's timeout is 9).
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		DatabaseURL: dsn, RedisURL: rs.URL,
		Targets: 300, Accounts: 5, Concurrency: 5,
		AccuracyAccounts: 5, AccuracyWorkers: 2, AccuracyConcurrency: 5, AccuracyDuration: 3 * time.Second,
		Windows:    []Window{{Max: 2, Per: time.Second}},
		ScaleSizes: []int{2000}, ScalePending: 200, ScaleAccounts: 5,
		WakeSamples: 3,
		Binary:      bin, MemoryAccounts: 5, MemoryDuration: 2 * time.Second,
		RecoverySamples: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if tp := res.Throughput; tp == nil || tp.Sent != 300 || tp.Pipeline <= 0 || tp.Asynq <= 0 {
		t.Errorf("throughput = %+v, want 300 sent and both runs timed", tp)
	}
	if a := res.Accuracy; a == nil || a.Violations != 0 || a.Used == 0 || a.Allowed == 0 {
		t.Errorf("accuracy = %+v, want no violation and some sends", a)
	}
	if len(res.Scale) != 1 || res.Scale[0].Enqueued != 5*scaleLimit || res.Scale[0].RedisBytes <= 0 {
		t.Errorf("scale = %+v, want one size with %d tasks enqueued", res.Scale, 5*scaleLimit)
	}
	if w := res.Wakeup; w == nil || w.P50 <= 0 || w.P99 < w.P50 {
		t.Errorf("wakeup = %+v, want percentiles", w)
	}
	if m := res.Memory; m == nil || m.SchedulerPeak <= 0 || m.WorkerPeak <= 0 {
		t.Errorf("memory = %+v, want both processes measured", m)
	}
	if rc := res.Recovery; rc == nil || rc.Orphans < 3 || rc.Max <= 0 || rc.Repeats != 0 {
		t.Errorf("recovery = %+v, want orphans recovered and nobody invited twice", rc)
	}
	var b bytes.Buffer
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pipeline / bare asynq", "limit violations", "scheduler tick", "wake-up", "resident memory", "recovery"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestGreedyMax checks the utilisation's yardstick against hand counts.
func TestGreedyMax(t *testing.T) {
	for _, tc := range []struct {
		windows []Window
		d       time.Duration
		want    int
	}{
		{[]Window{{Max: 2, Per: time.Second}}, 0, 2},
		{[]Window{{Max: 2, Per: time.Second}}, 999 * time.Millisecond, 2},
		{[]Window{{Max: 2, Per: time.Second}}, time.Second, 4},
		{[]Window{{Max: 2, Per: time.Second}, {Max: 10, Per: 10 * time.Second}}, 9 * time.Second, 10},
		{[]Window{{Max: 2, Per: time.Second}, {Max: 10, Per: 10 * time.Second}}, 10 * time.Second, 12},
	} {
		if got := GreedyMax(tc.windows, tc.d); got != tc.want {
			t.Errorf("GreedyMax(%v, %s) = %d, want %d", tc.windows, tc.d, got, tc.want)
		}
	}
	if got := GreedyMax([]simulator.Window{{Max: 3, Per: time.Second}}, 0); got != 3 {
		t.Errorf("GreedyMax(simulator windows) = %d, want 3", got)
	}
}
