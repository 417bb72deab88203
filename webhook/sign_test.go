package webhook_test

import (
	"errors"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/webhook"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	const secret = "whsec_5f2b9c0e7d1a4e8f"
	now := time.Unix(1764580443, 0)
	body := []byte(`{"events":[{"id":1}]}`)
	h := webhook.Sign(secret, now, body)
	if err := webhook.Verify(secret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	// A rotated secret: the receiver accepts either of two v1 entries.
	if err := webhook.Verify(secret, h+",v1=00", body, now, 0); err != nil {
		t.Fatalf("with a second v1: %v", err)
	}
	for _, c := range []struct {
		name, secret, header string
		body                 []byte
		at                   time.Time
	}{
		{"tampered body", secret, h, []byte(`{"events":[{"id":2}]}`), now},
		{"wrong secret", "whsec_other_secret_00", h, body, now},
		{"too old", secret, h, body, now.Add(6 * time.Minute)},
		{"from the future", secret, h, body, now.Add(-6 * time.Minute)},
		{"no header", secret, "", body, now},
		{"no v1", secret, "t=1764580443", body, now},
		{"bad time", secret, "t=x,v1=" + h[len("t=1764580443,v1="):], body, now},
	} {
		if err := webhook.Verify(c.secret, c.header, c.body, c.at, 5*time.Minute); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", c.name, err)
		}
	}
}

func TestHostHidesPathAndQuery(t *testing.T) {
	t.Parallel()
	if got := webhook.Host("https://user:pw@hooks.example.com:8443/services/T0/B0/XyZ?token=abc"); got != "https://hooks.example.com:8443" {
		t.Errorf("Host: %q", got)
	}
}
