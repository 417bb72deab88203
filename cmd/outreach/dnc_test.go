package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/outreach-dev/outreach/store/storetest"
)

// dnc add, list, remove and import against a real database: entries are
// normalised as targets are, scoped, listed as text and JSON, bad import
// rows are listed with their lines and skipped, and adding an entry skips
// the matching waiting target.
func TestDncCommands(t *testing.T) {
	cliEnv(t)
	db := cliDB(t)
	mustRun(t, "account", "add", "li-alice", "--provider", "unipile", "--provider-account-id", "acc1")
	mustRun(t, "campaign", "add", "spring", "--account", "li-alice", "--message", "Hi")
	storetest.AddNormalizedTarget(t, db, "spring", "https://www.linkedin.com/in/jane-doe/", "jane-doe")

	out := mustRun(t, "dnc", "add", "https://fr.linkedin.com/in/Jane-Doe/?trk=x", "--provider", "unipile", "--reason", "asked us", "--by", "alice")
	if !strings.Contains(out, "identifier jane-doe, global") {
		t.Errorf("dnc add output: %q, want the normalised identifier and the scope", out)
	}
	only := storetest.OnlyTarget(t, db)
	status, reason := only.Status, only.LastError
	if status != "skipped" || !strings.Contains(reason, "global entry") || !strings.Contains(reason, "alice: asked us") {
		t.Errorf("target after dnc add: %s %q, want skipped naming the entry", status, reason)
	}
	mustRun(t, "dnc", "add", "--domain", "acme.com", "--by", "bob")
	// The CLI normalises in Go: a slug the database's twin refuses is fine.
	out = mustRun(t, "dnc", "add", "https://www.linkedin.com/in/J%C3%B6hn-Doe/", "--provider", "unipile")
	var id int
	if _, err := fmt.Sscanf(out, "added do-not-contact entry %d:", &id); err != nil || !strings.Contains(out, "identifier jöhn-doe") {
		t.Fatalf("dnc add of a non-ASCII slug: %q (%v), want identifier jöhn-doe", out, err)
	}
	mustRun(t, "dnc", "remove", strconv.Itoa(id))
	mustRun(t, "dnc", "add", "--provider-id", "ACoAAx", "--account", "li-alice")

	// Errors: usage, a value refused, an unknown campaign, a duplicate.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dnc", "add", "jane"}, exitUsage, "needs its provider"},
		{[]string{"dnc", "add", "jane", "--domain", "x.com"}, exitUsage, "exactly one"},
		{[]string{"dnc", "add", "https://example.com/x", "--provider", "unipile"}, exitUsage, "not a linkedin.com URL"},
		{[]string{"dnc", "add", "--domain", "not a domain"}, exitUsage, "do_not_contact.domain"},
		{[]string{"dnc", "add", "jane", "--campaign", "nope"}, exitNotFound, "nope"},
		{[]string{"dnc", "add", "--domain", "acme.com"}, exitError, "already on the do-not-contact list"},
		{[]string{"dnc", "remove", "999"}, exitNotFound, "999"},
		{[]string{"dnc", "frob"}, exitUsage, "add, remove, list or import"},
	} {
		code, _, errs := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("outreach %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.want)
		}
	}

	csvFile := writeFile(t, "dnc.csv", "identifier,domain,provider,campaign,reason\n"+
		"john-roe,,unipile,,left the company\n"+ // line 2: good
		"https://example.com/x,,unipile,,\n"+ // line 3: not LinkedIn
		",example.org,,,\n"+ // line 4: good
		"someone,,,nope,\n"+ // line 5: no such campaign
		"jane-doe,,unipile,,again\n"+ // line 6: already on the list
		"too,many,fields,,,,\n"+ // line 7
		"camp-only,,,spring,\n"+ // line 8: good, campaign scope
		"bad\"quote,,unipile,,\n") // line 9: broken quoting
	code, out, errs := cli(t, "dnc", "import", csvFile, "--by", "carol")
	if code != exitPartial {
		t.Errorf("dnc import: exit %d, want %d\n%s\n%s", code, exitPartial, out, errs)
	}
	for _, want := range []string{"dnc.csv:3:", "dnc.csv:5:", "dnc.csv:6:", "dnc.csv:7:", "dnc.csv:9:"} {
		if !strings.Contains(errs, want) {
			t.Errorf("import stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "dnc.csv:2:") || strings.Contains(errs, "dnc.csv:8:") {
		t.Errorf("good rows reported bad:\n%s", errs)
	}
	if !strings.Contains(out, "8 rows read, 3 entries added, 5 bad rows skipped") {
		t.Errorf("import summary: %q", out)
	}

	out = mustRun(t, "dnc", "list", "--json")
	var list []dncJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("dnc list --json: %v\n%s", err, out)
	}
	if len(list) != 6 {
		t.Fatalf("list has %d entries, want 6: %s", len(list), out)
	}
	if list[0].NormalizedIdentifier != "jane-doe" || list[0].AddedBy != "alice" || list[0].Scope != "global" {
		t.Errorf("first entry %+v", list[0])
	}
	if list[2].Scope != "account 1" || list[2].Provider != "unipile" {
		t.Errorf("account entry %+v, want account scope with its provider", list[2])
	}
	last := list[5]
	if !strings.HasPrefix(last.Scope, "campaign ") || last.AddedBy != "carol" || last.NormalizedIdentifier != "camp-only" {
		t.Errorf("imported campaign entry %+v", last)
	}
	text := mustRun(t, "dnc", "list")
	if !strings.Contains(text, "domain acme.com") || !strings.Contains(text, "left the company") {
		t.Errorf("dnc list:\n%s", text)
	}
	mustRun(t, "dnc", "remove", "1")
	out = mustRun(t, "dnc", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 5 {
		t.Errorf("after remove: %v, %d entries, want 5", err, len(list))
	}
	if code, _, errs := cli(t, "dnc", "--help"); code != exitOK || !strings.Contains(errs, "do-not-contact") {
		t.Errorf("dnc --help: exit %d\n%s", code, errs)
	}
}
