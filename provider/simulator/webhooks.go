package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Webhook is where the simulator posts Unipile's webhooks: new_relation
// (the users source) when an invitation is accepted, and account_status
// when SetAccountStatus changes an account. Unipile authenticates a
// webhook only with the custom headers given when it was created; Header
// and Value are that header.
type Webhook struct {
	// URL receives the POSTs; "" posts nothing.
	URL string
	// Header and Value are the custom header sent with every webhook
	// (such as "Unipile-Auth" and a secret).
	Header, Value string
	// Drop, if set, loses the webhooks it returns true for (a lost
	// delivery: never retried); Repeat delivers each one that many extra
	// times (a duplicate delivery).
	Drop   func(WebhookEvent) bool
	Repeat int
	// Attempts is how many times a delivery is tried while the receiver
	// does not answer 200 (Unipile: the first try and five retries); 0
	// means 6.
	Attempts int
	// Client posts them; nil means a client with a 10 s timeout.
	Client *http.Client
}

// Kinds of WebhookEvent.
const (
	WebhookNewRelation   = "new_relation"
	WebhookAccountStatus = "account_status"
)

// WebhookEvent is one webhook the simulator posts.
type WebhookEvent struct {
	Kind    string
	Account string
	// ProviderID and PublicID are the new relation's (new_relation).
	ProviderID, PublicID string
	// InvitationID is the accepted invitation (new_relation).
	InvitationID string
	// Status is the account status message (account_status).
	Status string
}

// Body is the JSON body Unipile posts for the event: for a new relation
// {event, account_id, account_type, webhook_name, user_full_name,
// user_provider_id, user_public_identifier, user_profile_url,
// user_picture_url}; for an account status {AccountStatus: {account_id,
// account_type, message}} (developer.unipile.com: "Detecting accepted
// invitations", "Account status updates").
func (e WebhookEvent) Body(fullName string) []byte {
	var v any
	switch e.Kind {
	case WebhookAccountStatus:
		v = map[string]any{"AccountStatus": map[string]any{
			"account_id": e.Account, "account_type": "LINKEDIN", "message": e.Status}}
	default:
		v = map[string]any{
			"event": "new_relation", "account_id": e.Account, "account_type": "LINKEDIN",
			"webhook_name": "outreach", "user_full_name": fullName,
			"user_provider_id": e.ProviderID, "user_public_identifier": e.PublicID,
			"user_profile_url": "https://www.linkedin.com/in/" + e.PublicID + "/",
			"user_picture_url": "",
		}
	}
	b, _ := json.Marshal(v)
	return b
}

// SetWebhook sets where webhooks go (the zero Webhook stops them).
func (s *Simulator) SetWebhook(h Webhook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept.hook = h
}

// WebhookReport counts what one DeliverWebhooks did.
type WebhookReport struct {
	// Events is how many events were due; Dropped of them were lost on
	// purpose (Webhook.Drop); Posts counts every POST made (repeats and
	// retries included); Failed counts events whose every attempt failed.
	Events, Dropped, Posts, Failed int
}

// DeliverWebhooks posts the webhooks due by now: a new_relation for each
// invitation accepted since the last delivery, and the account_status
// changes made since. Events are marked delivered before they are posted,
// so a failed delivery is lost like one of Unipile's after its retries
// (polling is what reconciles). With no URL set, events are kept.
func (s *Simulator) DeliverWebhooks(ctx context.Context) (WebhookReport, error) {
	type post struct {
		ev   WebhookEvent
		body []byte
	}
	var rep WebhookReport
	s.mu.Lock()
	s.accept.init()
	h := s.accept.hook
	if h.URL == "" {
		s.mu.Unlock()
		return rep, nil
	}
	var posts []post
	for _, ev := range s.accept.outbox {
		posts = append(posts, post{ev, ev.Body("")})
	}
	s.accept.outbox = nil
	now := s.now()
	for k, acc := range s.accounts {
		for _, inv := range acc.ordered {
			if s.accept.notified[inv.ID] {
				continue
			}
			if _, ok := s.acceptedAt(inv, now); !ok {
				continue
			}
			s.accept.notified[inv.ID] = true
			ev := WebhookEvent{Kind: WebhookNewRelation, Account: k.id, ProviderID: inv.ProviderID,
				PublicID: inv.PublicID, InvitationID: inv.ID}
			name := ""
			if p := s.personBySlug(inv.PublicID); p != nil {
				name = p.FirstName + " " + p.LastName
			}
			posts = append(posts, post{ev, ev.Body(name)})
		}
	}
	s.mu.Unlock()

	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	attempts := h.Attempts
	if attempts <= 0 {
		attempts = 6
	}
	var firstErr error
	for _, p := range posts {
		rep.Events++
		if h.Drop != nil && h.Drop(p.ev) {
			rep.Dropped++
			continue
		}
		for copy := 0; copy <= h.Repeat; copy++ {
			ok := false
			for try := 0; try < attempts && !ok; try++ {
				rep.Posts++
				err := postWebhook(ctx, client, h, p.body)
				ok = err == nil
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
			}
			if !ok && copy == 0 {
				rep.Failed++
			}
		}
	}
	return rep, firstErr
}

func postWebhook(ctx context.Context, client *http.Client, h Webhook, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Header != "" {
		req.Header.Set(h.Header, h.Value)
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook %s: HTTP %d", h.URL, res.StatusCode)
	}
	return nil
}

// RunWebhooks delivers webhooks every interval until ctx is done (the
// demo and `outreach simulate`).
func (s *Simulator) RunWebhooks(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.DeliverWebhooks(ctx)
		}
	}
}
