package dashboard_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/dashboard"
)

// chromium returns Debian's chromium, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("headless browser test skipped: /usr/bin/chromium is not installed (apt-get install chromium, or run `make deps` as root)")
	return ""
}

// headless runs chromium on url with extra flags and returns its stdout.
func headless(t *testing.T, bin, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--window-size=1400,900",
		"--virtual-time-budget=10000"}
	args = append(append(args, extra...), url)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// TestBrowserShowsQueues loads the dashboard (a React app) in headless
// Chromium and finds the project's queues in the rendered page. Set
// OUTREACH_SCREENSHOT_DIR to keep a screenshot of it.
func TestBrowserShowsQueues(t *testing.T) {
	bin := chromium(t)
	t.Parallel()
	srv := setup(t, dashboard.Options{ReadOnly: true})
	dom := headless(t, bin, srv.URL+"/", "--dump-dom")
	for _, want := range []string{"invites", "lookups"} {
		if !strings.Contains(dom, ">"+want+"<") {
			t.Errorf("the rendered dashboard does not show the queue %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%.3000s", dom)
	}
	if dir := os.Getenv("OUTREACH_SCREENSHOT_DIR"); dir != "" {
		for _, page := range []string{"", "queues/invites?status=pending"} {
			name := "dashboard.png"
			if page != "" {
				name = "dashboard-invites.png"
			}
			path, err := filepath.Abs(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			headless(t, bin, srv.URL+"/"+page, "--screenshot="+path, "--hide-scrollbars")
			t.Logf("screenshot: %s", path)
		}
	}
}
