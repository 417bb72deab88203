package simulator

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/outreach-dev/outreach/provider"
)

// Acceptance says which invitations the simulated people accept, and when.
// The choice is deterministic per account and person (a hash with Seed),
// so a test can predict it with WillAccept.
type Acceptance struct {
	// Probability (0 to 1) that a person accepts an invitation; 0 means
	// nobody accepts (the default).
	Probability float64
	// Delay is how long after the invitation the person accepts, plus a
	// share of Jitter that is also fixed per person.
	Delay, Jitter time.Duration
	// Seed varies the choice between runs; the same Seed chooses the same
	// people.
	Seed uint64
}

// acceptState is the simulator's state for acceptances, account statuses
// and webhooks (relations.go, accountstatus.go, webhooks.go). Guarded by
// Simulator.mu.
type acceptState struct {
	acceptance Acceptance
	// status is the account status per Unipile account_id; absent is OK.
	status map[string]string
	// notified marks the invitations whose new_relation webhook went out.
	notified map[string]bool
	// outbox holds account_status webhooks not delivered yet.
	outbox []WebhookEvent
	hook   Webhook
}

func (st *acceptState) init() {
	if st.status == nil {
		st.status = make(map[string]string)
		st.notified = make(map[string]bool)
	}
}

// SetAcceptance sets who accepts invitations, and when; it applies to
// every invitation, sent before or after.
func (s *Simulator) SetAcceptance(a Acceptance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept.acceptance = a
}

// WillAccept reports whether the person providerID accepts an invitation
// from account, and how long after it was sent.
func (s *Simulator) WillAccept(account, providerID string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.willAcceptLocked(account, providerID)
}

func (s *Simulator) willAcceptLocked(account, providerID string) (time.Duration, bool) {
	a := s.accept.acceptance
	if a.Probability <= 0 {
		return 0, false
	}
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], a.Seed)
	h := sha256.Sum256([]byte(string(seed[:]) + "\x00" + account + "\x00" + providerID))
	draw := float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53)
	if draw >= a.Probability {
		return 0, false
	}
	d := a.Delay
	if a.Jitter > 0 {
		d += time.Duration(binary.BigEndian.Uint64(h[8:16]) % uint64(a.Jitter))
	}
	return d, true
}

// acceptedAt is when inv was accepted, if it was by now: a withdrawal
// before that time means never.
func (s *Simulator) acceptedAt(inv *invitation, now time.Time) (time.Time, bool) {
	d, ok := s.willAcceptLocked(inv.Account, inv.ProviderID)
	if !ok {
		return time.Time{}, false
	}
	at := inv.SentAt.Add(d)
	if at.After(now) || inv.Withdrawn && !inv.WithdrawnAt.After(at) {
		return time.Time{}, false
	}
	return at, true
}

// Relation is an accepted invitation: a new relation of an account.
type Relation struct {
	Account    string
	ProviderID string
	PublicID   string
	// InvitationID is the invitation that was accepted.
	InvitationID string
	At           time.Time
}

// relationsLocked lists the account's relations newest first.
func (s *Simulator) relationsLocked(accountID string) []Relation {
	acc := s.accounts[accountKey{provider.Unipile, accountID}]
	if acc == nil {
		return nil
	}
	now := s.now()
	var out []Relation
	for _, inv := range acc.ordered {
		if at, ok := s.acceptedAt(inv, now); ok {
			out = append(out, Relation{Account: accountID, ProviderID: inv.ProviderID, PublicID: inv.PublicID,
				InvitationID: inv.ID, At: at})
		}
	}
	slices.SortStableFunc(out, func(a, b Relation) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return cmp.Compare(b.InvitationID, a.InvitationID)
	})
	return out
}

// Relations lists the relations of a Unipile account made by accepted
// invitations, newest first, as the relations list answers them.
func (s *Simulator) Relations(accountID string) []Relation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relationsLocked(accountID)
}

// relationsPage is the default page size of the relations list.
const relationsPage = 100

// relationsCursor is the decoded cursor of the relations list, as in
// Unipile's Node SDK (UserRelationsListDecodedCursorSchema).
type relationsCursor struct {
	Limit      int `json:"limit"`
	StartIndex int `json:"startIndex"`
}

// serveRelations answers GET /api/v1/users/relations?account_id=&limit=&cursor=
// in the shape of the SDK's UserRelationsListApiResponseSchema.
func (s *Simulator) serveRelations(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"title": "Method Not Allowed", "status": 405})
		return
	}
	if !s.delay(r) {
		return
	}
	q := r.URL.Query()
	accID := q.Get("account_id")
	rec := Request{Provider: provider.Unipile, Op: "relations", Account: accID}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Time = s.now()
	acc, rp, outcome := s.unipileGate(r, "relations", accID)
	if rp == nil {
		rp, outcome = s.relationsPageLocked(accID, q.Get("limit"), q.Get("cursor"))
	}
	rec.Status, rec.Outcome = rp.status, outcome
	s.add(rec, acc)
	rp.write(w)
}

func (s *Simulator) relationsPageLocked(accID, limitParam, cursorParam string) (*reply, string) {
	c := relationsCursor{Limit: relationsPage}
	if limitParam != "" {
		n, err := strconv.Atoi(limitParam)
		if err != nil || n < 1 || n > 1000 {
			rp := unipileError("invalid_parameters", "limit must be between 1 and 1000.", 0, 0)
			return &rp, "invalid_parameters"
		}
		c.Limit = n
	}
	if cursorParam != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursorParam)
		if err != nil || json.Unmarshal(b, &c) != nil || c.StartIndex < 0 || c.Limit < 1 {
			rp := unipileError("invalid_parameters", "cursor is not valid.", 0, 0)
			return &rp, "invalid_parameters"
		}
	}
	all := s.relationsLocked(accID)
	items := []map[string]any{}
	i := c.StartIndex
	for ; i < len(all) && len(items) < c.Limit; i++ {
		rel := all[i]
		p := s.personBySlug(rel.PublicID)
		first, last, headline := "", "", ""
		if p != nil {
			first, last, headline = p.FirstName, p.LastName, p.Headline
		}
		items = append(items, map[string]any{
			"object": "UserRelation", "created_at": rel.At.UnixMilli(),
			"public_identifier": rel.PublicID, "headline": headline,
			"first_name": first, "last_name": last,
			"public_profile_url": "https://www.linkedin.com/in/" + rel.PublicID + "/",
			"member_urn":         "urn:li:member:" + rel.InvitationID,
			"member_id":          rel.ProviderID,
			"connection_urn":     "urn:li:fsd_connection:" + rel.ProviderID,
		})
	}
	var cursor any
	if i < len(all) {
		b, _ := json.Marshal(relationsCursor{Limit: c.Limit, StartIndex: i})
		cursor = base64.RawURLEncoding.EncodeToString(b)
	}
	return &reply{status: http.StatusOK, body: map[string]any{"object": "UserRelationsList", "items": items, "cursor": cursor}}, "ok"
}

// acceptedProfile makes the profile of a person who accepted the
// account's invitation read as a relation: first degree, no invitation
// pending. It returns the invitation type and status to show.
func (s *Simulator) acceptedProfile(acc *account, providerID string, now time.Time, body map[string]any, typ, status string) (string, string) {
	if inv := acc.pending[providerID]; inv != nil {
		if _, ok := s.acceptedAt(inv, now); ok {
			body["network_distance"], body["is_relationship"] = "FIRST_DEGREE", true
			return "", ""
		}
	}
	return typ, status
}

// acceptedNow reports whether inv was accepted by now: it is then a
// relation, no longer a pending invitation in the sent list.
func (s *Simulator) acceptedNow(inv *invitation) bool {
	_, ok := s.acceptedAt(inv, s.now())
	return ok
}
