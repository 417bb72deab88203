package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// browser is headless Chromium driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: NUL-terminated JSON on fds 3 and 4), so
// the test needs no websocket library and no network port. The pages
// under test use no JavaScript; the test uses it only to find and click
// elements, as a person would.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      *os.File // to chromium
	mu      sync.Mutex
	nextID  int
	waiters map[int]chan cdpReply
	session string
	done    chan struct{}
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// startBrowser starts Chromium with one page, sending header (name,
// value pairs) with every request of the page.
func startBrowser(t *testing.T, bin string, headers map[string]string) *browser {
	t.Helper()
	toChrome, chromeIn, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	chromeOut, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--window-size=1400,1000",
		"--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 (commands) and 4 (replies)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	toChrome.Close()
	fromChrome.Close()
	b := &browser{t: t, cmd: cmd, in: chromeIn, waiters: map[int]chan cdpReply{}, done: make(chan struct{})}
	go b.read(chromeOut)
	t.Cleanup(func() {
		chromeIn.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("chromium stderr:\n%.2000s", stderr.String())
		}
	})
	var created struct {
		TargetID string `json:"targetId"`
	}
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &created)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": created.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	b.call(b.session, "Page.enable", nil, nil)
	b.call(b.session, "Network.enable", nil, nil)
	if len(headers) > 0 {
		b.call(b.session, "Network.setExtraHTTPHeaders", map[string]any{"headers": headers}, nil)
	}
	b.call(b.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

func (b *browser) read(r *os.File) {
	defer close(b.done)
	br := bufio.NewReader(r)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m struct {
			ID int `json:"id"`
			cdpReply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.waiters[m.ID]
		delete(b.waiters, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.cdpReply
		}
	}
}

// call sends one DevTools command and decodes its result into out.
func (b *browser) call(session, method string, params any, out any) {
	b.t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.waiters[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.in.Write(append(data, 0)); err != nil {
		b.t.Fatalf("cdp %s: %v", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			b.t.Fatalf("cdp %s: %s", method, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				b.t.Fatalf("cdp %s: decode %s: %v", method, r.Result, err)
			}
		}
	case <-b.done:
		b.t.Fatalf("cdp %s: chromium exited", method)
	case <-time.After(60 * time.Second):
		b.t.Fatalf("cdp %s: no answer in 60s", method)
	}
}

// eval evaluates a JavaScript expression in the page and returns its
// value (strings, numbers, booleans).
func (b *browser) eval(expr string) any {
	b.t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		b.t.Fatalf("eval %q: %s", expr, r.ExceptionDetails.Text)
	}
	return r.Result.Value
}

// waitFor evaluates cond (a JavaScript boolean expression) until it holds,
// within a bounded deadline, polling the page's state.
func (b *browser) waitFor(cond string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if v, _ := b.eval(cond).(bool); v {
			return
		}
		select {
		case <-b.done:
			b.t.Fatal("chromium exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
	b.t.Fatalf("page never satisfied %s (at %v)", cond, b.eval("location.href"))
}

// open navigates to url and waits until the page has loaded.
func (b *browser) open(url string) {
	b.t.Helper()
	b.eval("window.__old = true")
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, nil)
	b.waitFor(fmt.Sprintf("!window.__old && document.readyState === 'complete' && location.href === %q", url))
}

// text returns the text of the first element matching selector, "" if none.
func (b *browser) text(selector string) string {
	b.t.Helper()
	v, _ := b.eval(fmt.Sprintf("(document.querySelector(%q) || {}).innerText || ''", selector)).(string)
	return v
}

// screenshot saves the whole page as a PNG at path.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	var r struct {
		Data string `json:"data"`
	}
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

var _ = context.Background
