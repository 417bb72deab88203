package store_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/registry"
	"github.com/outreach-dev/outreach/store"
)

// The database's twin of the provider packages' identifier rules gives
// what they give, or refuses: it is never laxer, and never disagrees.
func TestDNCNormalizeMatchesGo(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	const member = "ACoAAAcDMMQBODyLwZrRcgYhrkCafURGqva0U4E"
	const sales = "ACwAAAcDMMQBODyLwZrRcgYhrkCafURGqva0U4E"
	// must: the forms users type; the twin must normalise them.
	cases := []struct {
		prov provider.Name
		in   string
		must bool
	}{
		{"unipile", "jane-doe", true},
		{"unipile", "  Jane-Doe\n", true},
		{"unipile", "https://www.linkedin.com/in/jane-doe/", true},
		{"unipile", "http://linkedin.com/in/Jane-Doe", true},
		{"unipile", "www.linkedin.com/in/jane-doe/", true},
		{"unipile", "linkedin.com/in/jane-doe", true},
		{"unipile", "https://fr.linkedin.com/in/jane-doe/", true},
		{"unipile", "https://www.linkedin.com/in/jane-doe/?originalSubdomain=fr&trk=abc", true},
		{"unipile", "https://www.linkedin.com/in/jane-doe#experience", true},
		{"unipile", "https://www.linkedin.com/in/jane-doe/detail/contact-info/", true},
		{"unipile", "https://WWW.LINKEDIN.COM/in/jane-doe-12345678/", true},
		{"unipile", "https://www.linkedin.com/in/julien_crepieux", true},
		{"unipile", member, true},
		{"unipile", "https://www.linkedin.com/in/" + member + "/", true},
		{"unipile", "https://www.linkedin.com/sales/lead/" + sales + ",NAME_SEARCH,abc", true},
		{"unipile", "https://www.linkedin.com/sales/lead/" + sales + ",NAME_SEARCH,abc?_ntb=xyz", true},
		{"unipile", "https://www.linkedin.com/sales/people/" + sales + ",name,xyz", true},
		{"unipile", "https://www.linkedin.com/sales/lead/" + sales + "%2CNAME_SEARCH%2Cabc", true},
		{"unipile", "jane%2Ddoe", true},
		{"unipile", "https://www.linkedin.com/in/j%C3%B6hn-doe/", false},
		{"unipile", "jöhn-doe", false},
		{"unipile", "", false},
		{"unipile", "jane doe", false},
		{"unipile", "https://example.com/in/jane-doe", false},
		{"unipile", "https://linkedin.com.evil.example/in/jane-doe", false},
		{"unipile", "https://www.linkedin.com/company/acme/", false},
		{"unipile", "https://www.linkedin.com/in/", false},
		{"unipile", "https://www.linkedin.com/", false},
		{"unipile", "ftp://www.linkedin.com/in/jane", false},
		{"unipile", "https://www.linkedin.com:8443/in/jane", false},
		{"unipile", "https://user@www.linkedin.com/in/jane", false},
		{"unipile", "https://www.linkedin.com/sales/lead/not-an-id,NAME_SEARCH", false},
		{"unipile", strings.Repeat("a", 101), false},
		{"unipile", strings.Repeat("a", 100), true},
		{"unipile", "jane%ZZ", false},
		{"unipile", "jane.doe", false},
		{"unipile", "---", false},
		{"unipile", "j%FFdoe", false},
		{"unipile", "//linkedin.com/in/x", false},
		{"altegio", " Jane.Doe@Example.COM ", true},
		{"altegio", "jane+tag@mail.example.org", true},
		{"altegio", "+33 (6) 12-34.56.78", true},
		{"altegio", "0612345678", true},
		{"altegio", "Jane <jane@example.com>", false},
		{"altegio", "jane@", false},
		{"altegio", "@example.com", false},
		{"altegio", "12345", false},
		{"altegio", "06 12 ab", false},
		{"partoo", " 5f0c2a9e ", true},
		{"partoo", "a/b", false},
		{"partoo", "", false},
		{"partoo", strings.Repeat("x", 65), false},
	}
	reg := registry.Default()
	for _, tc := range cases {
		rules, err := reg.Rules(tc.prov)
		if err != nil {
			t.Fatal(err)
		}
		goID, goErr := rules.Normalize(tc.in)
		var sqlID string
		sqlErr := f.db.QueryRow(ctx, `SELECT dnc_normalize_identifier($1, $2)`, string(tc.prov), tc.in).Scan(&sqlID)
		switch {
		case sqlErr == nil && goErr != nil:
			t.Errorf("%s %q: SQL gives %q, Go refuses (%v): the SQL twin is laxer", tc.prov, tc.in, sqlID, goErr)
		case sqlErr == nil && sqlID != goID.Normalized:
			t.Errorf("%s %q: SQL gives %q, Go %q", tc.prov, tc.in, sqlID, goID.Normalized)
		case sqlErr != nil && tc.must:
			t.Errorf("%s %q: SQL refuses (%v), want %q", tc.prov, tc.in, sqlErr, goID.Normalized)
		case sqlErr != nil && !strings.Contains(sqlErr.Error(), "do_not_contact.identifier"):
			t.Errorf("%s %q: SQL error %v does not name the column", tc.prov, tc.in, sqlErr)
		}
	}
}

// Rows inserted with SQL are validated by the database, with errors that
// name the column, and normalised on insert.
func TestDNCValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	bad := []struct{ sql, want string }{
		{`INSERT INTO do_not_contact (identifier) VALUES ('jane-doe')`, "do_not_contact.provider"},
		{`INSERT INTO do_not_contact (provider, identifier, domain) VALUES ('unipile', 'jane-doe', 'x.com')`, "do_not_contact.identifier: give exactly one"},
		{`INSERT INTO do_not_contact (provider) VALUES ('unipile')`, "do_not_contact.identifier: give exactly one"},
		{`INSERT INTO do_not_contact (provider, identifier) VALUES ('unipile', 'https://example.com/in/jane')`, "do_not_contact.identifier"},
		{`INSERT INTO do_not_contact (domain) VALUES ('not a domain')`, "do_not_contact.domain"},
		{`INSERT INTO do_not_contact (provider, provider_id) VALUES ('unipile', '  ')`, "do_not_contact.provider_id"},
		{`INSERT INTO do_not_contact (account_id, campaign_id, provider_id) VALUES (` + itoa(f.account) + `, ` + itoa(f.campaign) + `, 'x')`, "do_not_contact.campaign_id"},
		{`INSERT INTO do_not_contact (account_id, provider, provider_id) VALUES (` + itoa(f.account) + `, 'partoo', 'x')`, "do_not_contact.provider"},
		{`INSERT INTO do_not_contact (provider, provider_id, added_by) VALUES ('unipile', 'x', ' ')`, "do_not_contact.added_by"},
	}
	for _, b := range bad {
		_, err := f.db.Exec(ctx, b.sql)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: error %v, want one naming %q", b.sql, err, b.want)
		}
	}
	// Normalised on insert; the provider comes from the scope.
	var norm, prov, by, domain string
	if err := f.db.QueryRow(ctx, `INSERT INTO do_not_contact (account_id, identifier, reason)
		VALUES ($1, 'https://www.linkedin.com/in/Jane-Doe/?trk=x', 'asked') RETURNING normalized_identifier, provider, added_by`,
		f.account).Scan(&norm, &prov, &by); err != nil {
		t.Fatal(err)
	}
	if norm != "jane-doe" || prov != "unipile" || by != "postgres" {
		t.Errorf("inserted entry: normalized %q provider %q added_by %q, want jane-doe, unipile, postgres", norm, prov, by)
	}
	if err := f.db.QueryRow(ctx, `INSERT INTO do_not_contact (domain) VALUES (' @Example.COM ') RETURNING domain`).Scan(&domain); err != nil {
		t.Fatal(err)
	}
	if domain != "example.com" {
		t.Errorf("domain stored as %q, want example.com", domain)
	}
	// The same person again, in the same scope, is a duplicate.
	_, err := f.st.AddDNC(ctx, store.NewDNCEntry{AccountID: f.account, Identifier: "jane-doe"})
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "entry") {
		t.Errorf("adding the same entry again: %v, want ErrConflict naming the entry", err)
	}
	_, err = f.st.AddDNC(ctx, store.NewDNCEntry{Provider: "unipile", Identifier: "https://example.com/x"})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "do_not_contact.identifier") {
		t.Errorf("AddDNC of a bad identifier: %v, want ErrInvalid naming the column", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// dncStatus reads a target's status and last error.
func dncStatus(t *testing.T, f fixture, id int64) (string, string) {
	t.Helper()
	var st, reason string
	if err := f.db.QueryRow(context.Background(), `SELECT status, coalesce(last_error, '') FROM targets WHERE id = $1`, id).Scan(&st, &reason); err != nil {
		t.Fatal(err)
	}
	return st, reason
}

// Entries apply in their scope only: a global entry to every campaign, an
// account's to its campaigns, a campaign's to that campaign; matching by
// identifier, by provider id (also through the people cache) and not
// otherwise. Checked when the scheduler plans targets.
func TestDNCScopesAtClaim(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	other, err := f.st.CreateCampaign(ctx, store.Campaign{Name: "c2", AccountID: f.account, MessageTemplate: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	// Entries first (no targets yet, nothing to skip on insert).
	for _, e := range []store.NewDNCEntry{
		{Provider: "unipile", Identifier: "global-person", Reason: "asked", AddedBy: "alice"},
		{AccountID: f.account, ProviderID: "acc-person"},
		{CampaignID: other, Identifier: "camp-person"},
		{CampaignID: other, Identifier: "camp-person2"},
		{Provider: "partoo", Identifier: "partoo-person"},
	} {
		if _, err := f.st.AddDNC(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var nt []store.NewTarget
	for _, id := range []string{"global-person", "acc-person", "camp-person", "partoo-person", "free-person"} {
		nt = append(nt, store.NewTarget{Identifier: id})
	}
	if _, err := f.st.AddTargets(ctx, f.campaign, nt); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddTargets(ctx, other, []store.NewTarget{{Identifier: "camp-person2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.PrepareTargets(ctx, 1000, normalizeAsIs); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	got, err := f.st.ClaimTargets(ctx, f.account, false, 1000, now.Add(time.Hour), now, func(store.Claimed) store.Prepared {
		return store.Prepared{Message: "hello"}
	})
	if err != nil {
		t.Fatal(err)
	}
	queued := map[string]int{}
	for _, tg := range got {
		queued[tg.Identifier]++
	}
	rows, err := f.db.Query(ctx, `SELECT c.name, t.identifier, t.status, coalesce(t.error_type, ''), coalesce(t.last_error, '')
		FROM targets t JOIN campaigns c ON c.id = t.campaign_id ORDER BY c.name, t.identifier`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ camp, ident, status, typ, reason string }
	seen := map[[2]string]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.camp, &r.ident, &r.status, &r.typ, &r.reason); err != nil {
			t.Fatal(err)
		}
		seen[[2]string{r.camp, r.ident}] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	stopped := func(camp, ident, reasonPart string) {
		t.Helper()
		r := seen[[2]string{camp, ident}]
		if r.status != "skipped" || r.typ != store.ErrorTypeDoNotContact || !strings.Contains(r.reason, reasonPart) {
			t.Errorf("%s/%s: %s %q (%s), want skipped by do-not-contact with a reason containing %q", camp, ident, r.status, r.reason, r.typ, reasonPart)
		}
	}
	stopped("c", "global-person", "global entry")
	stopped("c", "global-person", "added by alice: asked")
	stopped("c", "acc-person", "account ")
	stopped("c2", "camp-person2", "campaign ")
	if r := seen[[2]string{"c", "camp-person"}]; r.typ == store.ErrorTypeDoNotContact {
		t.Errorf("c/camp-person stopped by another campaign's entry: %q", r.reason)
	}
	if queued["camp-person"] != 1 || queued["free-person"] != 1 || queued["partoo-person"] != 1 {
		t.Errorf("queued %v, want camp-person (in c), free-person and partoo-person (a partoo entry) once each", queued)
	}
	if queued["global-person"]+queued["acc-person"] != 0 {
		t.Errorf("queued %v: stopped persons were planned", queued)
	}
}

// Adding an entry skips the matching waiting targets at once (pending and
// queued), in its own transaction; a target being sent is left to the
// reservation of its next attempt, which skips it with zero calls.
func TestDNCAddSkipsWaitingAndReserveChecks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "queued-one", "sending-one", "other-one")
	if _, err := f.st.AddTargets(ctx, f.campaign, []store.NewTarget{{Identifier: "pending-one"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.PrepareTargets(ctx, 1000, normalizeAsIs); err != nil {
		t.Fatal(err)
	}
	var pendingID int64
	if err := f.db.QueryRow(ctx, `SELECT id FROM targets WHERE identifier = 'pending-one'`).Scan(&pendingID); err != nil {
		t.Fatal(err)
	}
	// sending-one is held by a worker.
	if _, err := begin(f, ts[1].ID, now); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"queued-one", "sending-one", "pending-one"} {
		if _, err := f.db.Exec(ctx, `INSERT INTO do_not_contact (provider, provider_id, reason, added_by) VALUES ('unipile', $1, 'gdpr', 'bob')`, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{ts[0].ID, pendingID} {
		if st, reason := dncStatus(t, f, id); st != "skipped" || !strings.Contains(reason, "global entry") || !strings.Contains(reason, "bob: gdpr") {
			t.Errorf("waiting target %d after the entry: %s %q, want skipped naming the entry", id, st, reason)
		}
	}
	if st, _ := dncStatus(t, f, ts[1].ID); st != "sending" {
		t.Errorf("target being sent: %s, want left sending", st)
	}
	if st, _ := dncStatus(t, f, ts[2].ID); st != "queued" {
		t.Errorf("unlisted target: %s, want queued", st)
	}
	// The queued task comes to a worker: nothing to do.
	if _, err := begin(f, ts[0].ID, now); !errors.Is(err, store.ErrStale) {
		t.Errorf("Begin of the skipped target: %v, want ErrStale", err)
	}
	// The worker sending died; the next attempt's reservation stops it.
	later := now.Add(2 * time.Minute)
	_, err := begin(f, ts[1].ID, later)
	var dnc *store.DoNotContactError
	if !errors.As(err, &dnc) || !errors.Is(err, store.ErrStale) {
		t.Fatalf("Begin after the lease: %v, want a DoNotContactError (ErrStale)", err)
	}
	if st, reason := dncStatus(t, f, ts[1].ID); st != "skipped" || !strings.Contains(reason, "bob: gdpr") {
		t.Errorf("target after its reservation was stopped: %s %q, want skipped naming the entry (committed)", st, reason)
	}
	var inFlight int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM sends WHERE target_id = $1 AND outcome = 'in_flight'`, ts[1].ID).Scan(&inFlight); err != nil {
		t.Fatal(err)
	}
	if inFlight != 0 {
		t.Errorf("%d ledger rows still in flight for the stopped target, want 0 (the dead attempt closed, no new one)", inFlight)
	}
}

// The reservation's check stands on its own: with the insert trigger off,
// an entry added while the target is queued still stops it at Begin, by
// identifier, and by the provider id the people cache knows for it.
func TestDNCReserveCheck(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "a-person", "b-person", "c-person")
	if _, err := f.db.Exec(ctx, `ALTER TABLE do_not_contact DISABLE TRIGGER do_not_contact_skip`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddDNC(ctx, store.NewDNCEntry{CampaignID: f.campaign, Identifier: "a-person", Reason: "customer"}); err != nil {
		t.Fatal(err)
	}
	_, err := begin(f, ts[0].ID, now)
	var dnc *store.DoNotContactError
	if !errors.As(err, &dnc) || !strings.Contains(dnc.Reason, "campaign ") || !strings.Contains(dnc.Reason, "customer") {
		t.Fatalf("Begin of a listed queued target: %v, want a DoNotContactError naming the campaign entry", err)
	}
	var sends int
	if err := f.db.QueryRow(ctx, `SELECT count(*) FROM sends WHERE target_id = $1`, ts[0].ID).Scan(&sends); err != nil {
		t.Fatal(err)
	}
	if sends != 0 {
		t.Errorf("%d ledger rows for the stopped target, want 0", sends)
	}
	if at, err := begin(f, ts[1].ID, now); err != nil || at == nil {
		t.Errorf("Begin of an unlisted target: %v, want a reservation", err)
	}
	// A lookup target whose person the cache knows by provider id.
	if _, err := f.st.AddTargets(ctx, f.campaign, []store.NewTarget{{Identifier: "d-slug"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(ctx, `INSERT INTO people (provider, normalized_identifier, provider_id) VALUES ('unipile', 'd-slug', 'ACoAAd')`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddDNC(ctx, store.NewDNCEntry{AccountID: f.account, ProviderID: "ACoAAd"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.PrepareTargets(ctx, 1000, func(_ provider.Name, id string) store.Normalized { return store.Normalized{Identifier: id} }); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.ClaimTargets(ctx, f.account, false, 1000, now.Add(time.Hour), now, func(store.Claimed) store.Prepared {
		return store.Prepared{Message: "hi"}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range got {
		if tg.Identifier == "d-slug" {
			t.Errorf("d-slug planned although its cached provider id is listed")
		}
	}
	var st string
	if err := f.db.QueryRow(ctx, `SELECT status FROM targets WHERE identifier = 'd-slug'`).Scan(&st); err != nil {
		t.Fatal(err)
	}
	if st != "skipped" {
		t.Errorf("d-slug: %s, want skipped", st)
	}
}

// A domain entry matches email identifiers at that domain (Altegio), not
// other domains, not sub-strings.
func TestDNCDomain(t *testing.T) {
	t.Parallel()
	f := setupAccount(t, store.NewAccount{Provider: "altegio", Pacing: store.PacingUnlimited})
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "jane@acme.com", "joe@notacme.com", "+33612345678")
	e, err := f.st.AddDNC(ctx, store.NewDNCEntry{Domain: "ACME.com", Reason: "client"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Domain != "acme.com" || e.Scope() != "global" {
		t.Errorf("entry %+v, want domain acme.com, global", e)
	}
	want := []string{"skipped", "queued", "queued"}
	for i, tg := range ts {
		if st, _ := dncStatus(t, f, tg.ID); st != want[i] {
			t.Errorf("%s: %s, want %s", tg.Identifier, st, want[i])
		}
	}
	list, err := f.st.ListDNC(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListDNC: %v, %v", list, err)
	}
	if _, err := f.st.RemoveDNC(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.RemoveDNC(ctx, e.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing twice: %v, want ErrNotFound", err)
	}
}

// An import keeps the good rows, lists the bad ones, and changes nothing
// already on the list.
func TestDNCImport(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	first, err := f.st.AddDNC(ctx, store.NewDNCEntry{Provider: "unipile", Identifier: "kept", Reason: "old"})
	if err != nil {
		t.Fatal(err)
	}
	added, bad, err := f.st.ImportDNC(ctx, []store.NewDNCEntry{
		{Provider: "unipile", Identifier: "new-one"},
		{Provider: "unipile", Identifier: "https://example.com/nope"},
		{Provider: "unipile", Identifier: "kept", Reason: "new"},
		{AccountID: 999999, ProviderID: "x"},
		{Domain: "example.org"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 2 || len(bad) != 3 {
		t.Fatalf("import: added %v, bad %v; want 2 added, 3 bad", added, bad)
	}
	for i, want := range []int{1, 2, 3} {
		if bad[i].Row != want {
			t.Errorf("bad row %d is %d, want %d (%v)", i, bad[i].Row, want, bad[i].Err)
		}
	}
	list, err := f.st.ListDNC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].ID != first.ID || list[0].Reason != "old" {
		t.Errorf("list after import: %+v, want the old entry unchanged and two new", list)
	}
}

// An entry added while a reservation holds a queued target waits for it,
// and then leaves the target it made sending alone: the call reserved
// before the entry existed is not disowned (the next reservation checks).
func TestDNCInsertWaitsForReservation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := time.Now().Add(time.Second)
	ts := queue(t, f, now, "racing-one")
	// A reservation in progress: the target locked and made sending.
	tx, err := f.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE targets SET status = 'sending', locked_until = now() + interval '1 minute' WHERE id = $1`, ts[0].ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.st.AddDNC(ctx, store.NewDNCEntry{Provider: "unipile", Identifier: "racing-one"})
		done <- err
	}()
	// The insert's skip waits for the target's lock.
	waitForLockWait(t, f)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st, reason := dncStatus(t, f, ts[0].ID); st != "sending" {
		t.Errorf("target a reservation took while the entry was added: %s %q, want left sending", st, reason)
	}
}

// waitForLockWait waits until a session of the test's database waits for
// a lock.
func waitForLockWait(t *testing.T, f fixture) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := f.db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no session waits for a lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
