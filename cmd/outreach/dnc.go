package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/scheduler"
	"github.com/outreach-dev/outreach/store"
)

const dncUsage = `dnc add IDENTIFIER|--provider-id ID|--domain DOMAIN [--account A|--campaign C] [--provider P] [--reason TEXT] [--by WHO]
       outreach dnc remove ID
       outreach dnc list [--json]
       outreach dnc import FILE.csv [--account A|--campaign C] [--provider P] [--by WHO]

The do-not-contact list (docs/dnc.md): people never to contact, by
identifier (a LinkedIn URL or slug, an email, a phone number, a Partoo user
id; normalised as targets are), by provider id, or by email domain; for
everyone (the default), one account (--account) or one campaign
(--campaign). Adding an entry skips the matching waiting targets at once;
a target being sent is stopped when its next attempt reserves a slot.
Removing an entry does not bring skipped targets back.

An entry by identifier or provider id needs its provider: --provider, or
the account's or campaign's.

import reads a CSV file with a header row ("-" reads standard input);
columns (any order, all optional but one of the first three): identifier,
provider_id, domain, provider, account, campaign, reason, added_by. The
flags give the defaults for empty cells. Bad rows are listed with their
line numbers and skipped; the good rows are added; nothing already on the
list changes.

Exit status: 0 done, 4 import with bad rows (the rest added), 3 no such
account, campaign or entry, 2 usage or a value the database refuses (the
message names the column), 1 other errors.`

func runDnc(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "dnc", dncUsage)
	account := fs.String("account", "", "add, import: only for this account (name or id)")
	campaign := fs.String("campaign", "", "add, import: only for this campaign (name or id)")
	prov := fs.String("provider", "", "add, import: the provider of a global entry by identifier or provider id (unipile, partoo, altegio)")
	providerID := fs.String("provider-id", "", "add: the person's provider id instead of an identifier")
	domain := fs.String("domain", "", "add: an email domain instead of an identifier (example.com)")
	reason := fs.String("reason", "", "add: why (shown on the targets it skips)")
	by := fs.String("by", defaultAddedBy(), "add, import: who adds the entry")
	asJSON := fs.Bool("json", false, "list: print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want dnc add, remove, list or import")
	}
	if *account != "" && *campaign != "" {
		return usagef("give --account or --campaign, not both (neither: a global entry)")
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r := &dncRefs{st: st, accounts: map[string]*store.Account{}, campaigns: map[string]*store.Campaign{}}
	defaults := dncRow{account: *account, campaign: *campaign, provider: *prov, reason: *reason, by: *by}
	switch pos[0] {
	case "add":
		row := defaults
		row.providerID, row.domain = *providerID, *domain
		switch {
		case len(pos) == 2:
			row.identifier = pos[1]
		case len(pos) > 2:
			return usagef("want one identifier (quote it if it holds spaces)")
		}
		if countSet(row.identifier, row.providerID, row.domain) != 1 {
			return usagef("give exactly one of IDENTIFIER, --provider-id or --domain")
		}
		e, err := r.entry(ctx, row)
		if err != nil {
			return err
		}
		got, err := st.AddDNC(ctx, e)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "added do-not-contact entry %d: %s, %s\n", got.ID, got.Match(), got.Scope())
	case "remove":
		if len(pos) != 2 {
			return usagef("want `dnc remove ID` (the id `dnc list` shows)")
		}
		id, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil {
			return usagef("entry id %q is not a number", pos[1])
		}
		got, err := st.RemoveDNC(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "removed do-not-contact entry %d: %s, %s (targets it skipped stay skipped)\n", got.ID, got.Match(), got.Scope())
	case "list":
		if len(pos) != 1 {
			return usagef("list takes no arguments")
		}
		entries, err := st.ListDNC(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printDNCJSON(env.Stdout, entries)
		}
		if len(entries) == 0 {
			fmt.Fprintln(env.Stdout, "the do-not-contact list is empty")
		}
		for _, e := range entries {
			prov := string(e.Provider)
			if prov == "" {
				prov = "any"
			}
			fmt.Fprintf(env.Stdout, "%d\t%s\t%s\t%s\tadded by %s %s", e.ID, e.Scope(), prov, e.Match(), e.AddedBy, e.AddedAt.UTC().Format(time.RFC3339))
			if e.Reason != "" {
				fmt.Fprintf(env.Stdout, "\t%s", e.Reason)
			}
			fmt.Fprintln(env.Stdout)
		}
	case "import":
		if len(pos) != 2 {
			return usagef("want `dnc import FILE.csv` (or - for standard input)")
		}
		return dncImport(ctx, env, r, pos[1], defaults)
	default:
		return usagef("dnc what? want add, remove, list or import, not %q", pos[0])
	}
	return nil
}

// defaultAddedBy is the login name of the user running the command, or
// empty (the database user is recorded then).
func defaultAddedBy() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// dncRow is one entry as typed: on the command line or in a CSV row.
type dncRow struct {
	identifier, providerID, domain      string
	provider, account, campaign, reason string
	by                                  string
}

// dncRefs resolves account and campaign references, once each.
type dncRefs struct {
	st        *store.Store
	accounts  map[string]*store.Account
	campaigns map[string]*store.Campaign
}

// entry turns a row into the entry to add: the scope resolved, and an
// identifier normalised by its provider's rules, as targets' are.
func (r *dncRefs) entry(ctx context.Context, row dncRow) (store.NewDNCEntry, error) {
	e := store.NewDNCEntry{Provider: provider.Name(row.provider), ProviderID: row.providerID, Domain: row.domain,
		Reason: row.reason, AddedBy: row.by, Identifier: row.identifier}
	var scopeProvider provider.Name
	switch {
	case row.account != "" && row.campaign != "":
		return e, usagef("give an account or a campaign, not both")
	case row.account != "":
		a, ok := r.accounts[row.account]
		if !ok {
			var err error
			if a, err = accountByRef(ctx, r.st, row.account); err != nil {
				return e, fmt.Errorf("account %q: %w", row.account, err)
			}
			r.accounts[row.account] = a
		}
		e.AccountID, scopeProvider = a.ID, a.Provider
	case row.campaign != "":
		c, ok := r.campaigns[row.campaign]
		if !ok {
			var err error
			if c, err = campaignByRef(ctx, r.st, row.campaign); err != nil {
				return e, fmt.Errorf("campaign %q: %w", row.campaign, err)
			}
			r.campaigns[row.campaign] = c
		}
		a, err := r.st.Account(ctx, c.AccountID)
		if err != nil {
			return e, err
		}
		e.CampaignID, scopeProvider = c.ID, a.Provider
	}
	if scopeProvider != "" && e.Provider != "" && e.Provider != scopeProvider {
		return e, usagef("provider %s is not the provider %s of the entry's account or campaign", e.Provider, scopeProvider)
	}
	if e.Provider == "" {
		e.Provider = scopeProvider
	}
	if e.Identifier != "" {
		if e.Provider == "" {
			return e, usagef("an identifier needs its provider: --provider, --account or --campaign")
		}
		n := scheduler.Normalize(e.Provider, e.Identifier)
		if n.Err != nil {
			return e, fmt.Errorf("%w: identifier: %v", store.ErrInvalid, n.Err)
		}
		e.NormalizedIdentifier = n.Identifier
	}
	if e.ProviderID != "" && e.Provider == "" {
		return e, usagef("a provider id needs its provider: --provider, --account or --campaign")
	}
	return e, nil
}

// dncBadRowsError is an import's error when some rows were skipped.
type dncBadRowsError struct{ bad, rows int }

func (e dncBadRowsError) Error() string {
	return fmt.Sprintf("%d of %d rows were bad and skipped (listed above); the good rows were added", e.bad, e.rows)
}

func (e dncBadRowsError) ExitCode() int { return exitPartial }

var dncColumns = []string{"identifier", "provider_id", "domain", "provider", "account", "campaign", "reason", "added_by"}

// dncImport adds the entries of a CSV file: rows that cannot be read or
// resolved, and rows the database refuses, are listed and skipped.
func dncImport(ctx context.Context, env *Env, r *dncRefs, name string, defaults dncRow) error {
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return usagef("%s: no header row: %v", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range dncColumns {
			known = known || c == h
		}
		if !known {
			return usagef("%s: unknown column %q (want %s)", name, h, strings.Join(dncColumns, ", "))
		}
		col[h] = i
	}
	if _, a := col["identifier"]; !a {
		if _, b := col["provider_id"]; !b {
			if _, c := col["domain"]; !c {
				return usagef("%s: the header needs an identifier, provider_id or domain column", name)
			}
		}
	}
	var entries []store.NewDNCEntry
	var lines []int
	bad, rows := 0, 0
	report := func(line int, err error) {
		bad++
		fmt.Fprintf(env.Stderr, "%s:%d: %v\n", name, line, err)
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		rows++
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				report(pe.StartLine, pe.Err)
				continue
			}
			return err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			report(line, fmt.Errorf("%d fields, want %d", len(rec), len(header)))
			continue
		}
		cell := func(c, def string) string {
			if i, ok := col[c]; ok && strings.TrimSpace(rec[i]) != "" {
				return strings.TrimSpace(rec[i])
			}
			return def
		}
		row := dncRow{identifier: cell("identifier", ""), providerID: cell("provider_id", ""), domain: cell("domain", ""),
			provider: cell("provider", defaults.provider), reason: cell("reason", defaults.reason), by: cell("added_by", defaults.by)}
		row.account, row.campaign = cell("account", ""), cell("campaign", "")
		if row.account == "" && row.campaign == "" {
			row.account, row.campaign = defaults.account, defaults.campaign
		}
		if countSet(row.identifier, row.providerID, row.domain) != 1 {
			report(line, errors.New("give exactly one of identifier, provider_id or domain"))
			continue
		}
		e, err := r.entry(ctx, row)
		if err != nil {
			if isUsage(err) || isNotFound(err) || errors.Is(err, store.ErrInvalid) {
				report(line, err)
				continue
			}
			return err
		}
		entries = append(entries, e)
		lines = append(lines, line)
	}
	added, refused, err := r.st.ImportDNC(ctx, entries)
	if err != nil {
		return err
	}
	for _, b := range refused {
		report(lines[b.Row], b.Err)
	}
	fmt.Fprintf(env.Stdout, "%s: %d rows read, %d entries added, %d bad rows skipped\n", name, rows, len(added), bad)
	if bad > 0 {
		return dncBadRowsError{bad: bad, rows: rows}
	}
	return nil
}

// dncJSON is an entry as `dnc list --json` prints it.
type dncJSON struct {
	ID                   int64     `json:"id"`
	Scope                string    `json:"scope"`
	AccountID            int64     `json:"account_id,omitempty"`
	CampaignID           int64     `json:"campaign_id,omitempty"`
	Provider             string    `json:"provider,omitempty"`
	Identifier           string    `json:"identifier,omitempty"`
	NormalizedIdentifier string    `json:"normalized_identifier,omitempty"`
	ProviderID           string    `json:"provider_id,omitempty"`
	Domain               string    `json:"domain,omitempty"`
	Reason               string    `json:"reason"`
	AddedBy              string    `json:"added_by"`
	AddedAt              time.Time `json:"added_at"`
}

func printDNCJSON(w io.Writer, entries []store.DNCEntry) error {
	out := make([]dncJSON, len(entries))
	for i, e := range entries {
		out[i] = dncJSON{ID: e.ID, Scope: e.Scope(), AccountID: e.AccountID, CampaignID: e.CampaignID,
			Provider: string(e.Provider), Identifier: e.Identifier, NormalizedIdentifier: e.NormalizedIdentifier,
			ProviderID: e.ProviderID, Domain: e.Domain, Reason: e.Reason, AddedBy: e.AddedBy, AddedAt: e.AddedAt.UTC()}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
