// Package webhook delivers the event stream to the URLs users subscribe
// in webhook_subscribers: each subscriber has its own cursor over the
// stream, receives its events in the stream's order (so in order per
// target), at least once, in signed POSTs (see Sign), and is retried with
// backoff when it fails, without ever holding up sends: the Runner is a
// loop of its own, with short transactions and a lease per subscriber.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/store"
)

// Config configures a Runner. Store is required; the rest has defaults.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger // default: none
	// Timeout bounds one delivery, connection to response (default 10s).
	Timeout time.Duration
	// BatchSize is the most events in one request (default 100); MaxBody
	// the most bytes of its body, unless one event alone is larger
	// (default 256 KiB).
	BatchSize int
	MaxBody   int
	// Poll is how often subscribers are checked without a notification:
	// retries that came due, notifications lost (default 5s).
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure, which
	// doubles with each failure in a row, with jitter (defaults 1s, 1h).
	MinBackoff, MaxBackoff time.Duration
	// Transport makes the requests (default: a transport of its own with
	// dial and TLS timeouts). Redirects are never followed.
	Transport http.RoundTripper
	// Owner names this runner in the subscribers' leases (default random).
	Owner string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Runner delivers events to the subscribers.
type Runner struct {
	cfg    Config
	client *http.Client
	// retryAt is the earliest retry a round set (zero: none), so that Run
	// wakes for it instead of waiting for the next poll.
	retryAt time.Time
	// held is how many rounds in a row found events held back by the
	// stream's horizon (store.EventsHeld): the next looks again after
	// store.HeldRetry.
	held, heldNow int
}

// New returns a Runner for cfg, with its defaults filled in.
func New(cfg Config) (*Runner, error) {
	if cfg.Store == nil {
		return nil, errors.New("webhook: Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 256 << 10
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Hour, cfg.MinBackoff)
	}
	if cfg.Owner == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		cfg.Owner = "webhook-" + hex.EncodeToString(b)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
			TLSHandshakeTimeout:   cfg.Timeout,
			ResponseHeaderTimeout: cfg.Timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
		}
	}
	client := &http.Client{
		Transport: cfg.Transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return &Runner{cfg: cfg, client: client}, nil
}

// Run delivers until ctx ends: at each notification of new events, and
// every Poll. It returns nil when ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	notify := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	go func() {
		// A lost connection is listened on again after a second, then
		// longer (to 30 s) while it keeps failing; Poll delivers
		// meanwhile.
		fails := 0
		for ctx.Err() == nil {
			began := time.Now()
			err := r.cfg.Store.ListenEvents(ctx, notify)
			if ctx.Err() != nil {
				return
			}
			if time.Since(began) > time.Minute {
				fails = 0
			}
			wait := min(time.Second<<min(fails, 5), 30*time.Second)
			fails++
			r.cfg.Logger.WarnContext(ctx, "listening for events; polling meanwhile", "error", err, "listen_again_in", wait)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}()
	t := time.NewTicker(r.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.WarnContext(ctx, "deliver webhooks", "error", err)
		}
		var retry <-chan time.Time
		var rt *time.Timer
		if !r.retryAt.IsZero() {
			rt = time.NewTimer(max(r.retryAt.Sub(r.cfg.Now()), 0))
			retry = rt.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-t.C:
		case <-retry:
		}
		if rt != nil {
			rt.Stop()
		}
	}
}

// maxBatchesPerRound keeps one busy subscriber from starving the others.
const maxBatchesPerRound = 20

// RunOnce gives every due subscriber the events it has not had (up to a
// number of batches each), and returns how many events were delivered.
// A failing subscriber is only retried when its backoff is over. Call it
// from one goroutine at a time (Run does).
func (r *Runner) RunOnce(ctx context.Context) (int, error) {
	ids, err := r.cfg.Store.DueWebhooks(ctx, r.cfg.Now())
	if err != nil {
		return 0, err
	}
	total := 0
	r.retryAt, r.heldNow = time.Time{}, 0
	defer func() {
		if r.heldNow == 0 {
			r.held = 0
			return
		}
		wait := store.HeldRetry(r.held, r.cfg.Poll)
		retry := r.cfg.Now().Add(wait)
		r.held++
		r.cfg.Logger.DebugContext(ctx, "events held back by a running transaction; looking again", "in", wait, "rounds", r.held)
		if r.retryAt.IsZero() || retry.Before(r.retryAt) {
			r.retryAt = retry
		}
	}()
	for _, id := range ids {
		n, err := r.serve(ctx, id)
		total += n
		if err != nil {
			if ctx.Err() != nil {
				return total, err
			}
			r.cfg.Logger.WarnContext(ctx, "webhook subscriber", "webhook", id, "error", err)
		}
	}
	return total, nil
}

func (r *Runner) lease() time.Duration { return 2*r.cfg.Timeout + 30*time.Second }

// serve delivers to subscriber id under a lease.
func (r *Runner) serve(ctx context.Context, id int64) (int, error) {
	w, err := r.cfg.Store.ClaimWebhook(ctx, id, r.cfg.Owner, r.cfg.Now(), r.lease())
	if errors.Is(err, store.ErrStale) {
		return 0, nil // another runner has it, or it is no longer due
	}
	if err != nil {
		return 0, err
	}
	released := false
	defer func() {
		if !released {
			_ = r.cfg.Store.ReleaseWebhook(context.WithoutCancel(ctx), id, r.cfg.Owner)
		}
	}()
	total := 0
	for range maxBatchesPerRound {
		evs, err := r.cfg.Store.EventsAfter(ctx, w.Cursor, store.EventFilter{}, r.cfg.BatchSize)
		if err != nil {
			return total, err
		}
		if len(evs) == 0 {
			held, err := r.cfg.Store.EventsHeld(ctx, w.Cursor)
			if held {
				r.heldNow++
			}
			return total, err
		}
		body, batch, cur := r.body(w, evs)
		if len(batch) > 0 {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			// A delivery begun is finished (within Timeout) and recorded
			// even when the runner is stopping: stopping never causes a
			// needless repeat.
			if derr := r.post(context.WithoutCancel(ctx), w, body); derr != nil {
				now := r.cfg.Now()
				msg := redact(derr.Error(), w.URL)
				retry := now.Add(r.backoff(w.Attempts))
				r.cfg.Logger.WarnContext(ctx, "webhook delivery failed", "webhook", w.ID, "attempts", w.Attempts+1,
					"first_event", batch[0].ID, "retry_at", retry, "error", msg)
				released = true
				if r.retryAt.IsZero() || retry.Before(r.retryAt) {
					r.retryAt = retry
				}
				rctx, cancel := recordContext(ctx)
				defer cancel()
				return total, r.cfg.Store.WebhookFailed(rctx, w.ID, r.cfg.Owner, msg, now, retry)
			}
		}
		rctx, cancel := recordContext(ctx)
		err = r.cfg.Store.WebhookDelivered(rctx, w.ID, r.cfg.Owner, cur, len(batch), r.cfg.Now(), r.lease())
		cancel()
		if err != nil {
			return total, err
		}
		w.Cursor, w.Attempts = cur, 0
		total += len(batch)
		if len(batch) > 0 {
			r.cfg.Logger.DebugContext(ctx, "webhook delivered", "webhook", w.ID, "events", len(batch), "last_event", cur.ID)
		}
	}
	return total, nil
}

// recordContext is the context of recording a delivery's result: a
// delivery made is recorded even when the runner is stopping, so that it
// is not sent again without need.
func recordContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// Payload is the body of a delivery: events in the stream's order.
type Payload struct {
	Events []Event `json:"events"`
}

// Event is one event as delivered. Its ID identifies it: a receiver that
// sees an ID again (delivery is at least once) ignores it.
type Event struct {
	ID         int64           `json:"id"`
	Kind       store.EventKind `json:"kind"`
	At         time.Time       `json:"at"`
	AccountID  int64           `json:"account_id,omitempty"`
	CampaignID int64           `json:"campaign_id,omitempty"`
	TargetID   int64           `json:"target_id,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// body returns the next request body for w from evs: the events it wants,
// in order, up to BatchSize and MaxBody (at least one), and the cursor
// after the last event it covers (wanted or passed over).
func (r *Runner) body(w *store.WebhookSubscriber, evs []store.Event) ([]byte, []Event, store.EventCursor) {
	var batch []Event
	var parts [][]byte
	size := len(`{"events":[]}`)
	cur := w.Cursor
	for _, e := range evs {
		if !w.Wants(e.Kind) {
			cur = e.Cursor()
			continue
		}
		ev := Event{ID: e.ID, Kind: e.Kind, At: e.At.UTC(), AccountID: e.AccountID, CampaignID: e.CampaignID, TargetID: e.TargetID, Data: e.Data}
		b, err := json.Marshal(ev)
		if err != nil { // data is jsonb: it marshals
			continue
		}
		if len(batch) > 0 && size+len(b)+1 > r.cfg.MaxBody {
			break
		}
		batch, parts, size, cur = append(batch, ev), append(parts, b), size+len(b)+1, e.Cursor()
	}
	if len(batch) == 0 {
		return nil, nil, cur
	}
	var buf bytes.Buffer
	buf.WriteString(`{"events":[`)
	buf.Write(bytes.Join(parts, []byte{','}))
	buf.WriteString(`]}`)
	return buf.Bytes(), batch, cur
}

// maxResponse is how much of a response is read (for the error text and
// to reuse the connection).
const maxResponse = 64 << 10

func (r *Runner) post(ctx context.Context, w *store.WebhookSubscriber, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("bad URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "outreach-webhook/1")
	req.Header.Set("Outreach-Webhook-Id", fmt.Sprint(w.ID))
	req.Header.Set(SignatureHeader, Sign(w.Secret, r.cfg.Now(), body))
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text holds the URL
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fmt.Errorf("HTTP %d: redirects are not followed", resp.StatusCode)
	default:
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(strings.ToValidUTF8(string(head), "?")))
	}
}

// backoff is the wait after the (attempts+1)-th failure in a row:
// MinBackoff doubled attempts times, at most MaxBackoff, the upper half
// drawn at random.
func (r *Runner) backoff(attempts int) time.Duration {
	d := r.cfg.MinBackoff
	for range min(attempts, 40) {
		d *= 2
		if d >= r.cfg.MaxBackoff {
			d = r.cfg.MaxBackoff
			break
		}
	}
	return d/2 + mrand.N(d/2+1)
}

// redact removes the subscriber's URL (which can hold a token) and its
// query from an error text.
func redact(msg, raw string) string {
	msg = strings.ReplaceAll(msg, raw, "<url>")
	if u, err := url.Parse(raw); err == nil {
		if u.RawQuery != "" {
			msg = strings.ReplaceAll(msg, u.RawQuery, "<query>")
		}
		if u.User != nil {
			msg = strings.ReplaceAll(msg, u.User.String(), "<user>")
		}
	}
	return msg
}

// Host returns the scheme and host of a subscriber's URL, what status and
// logs may show of it (its path and query can hold a token).
func Host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(bad URL)"
	}
	return u.Scheme + "://" + u.Host
}
