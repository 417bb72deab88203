package unipile_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/outreach-dev/outreach/provider/unipile"
)

const memberID = "ACoAAAcDMMQBODyLwZrRcgYhrkCafURGqva0U4E"
const salesID = "ACwAAAcDMMQBODyLwZrRcgYhrkCafURGqva0U4E"

func TestNormalizeIdentifier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"jane-doe", "jane-doe"},
		{"  jane-doe\n", "jane-doe"},
		{"Jane-Doe", "jane-doe"},
		{"https://www.linkedin.com/in/jane-doe/", "jane-doe"},
		{"https://www.linkedin.com/in/jane-doe", "jane-doe"},
		{"http://linkedin.com/in/jane-doe", "jane-doe"},
		{"www.linkedin.com/in/jane-doe/", "jane-doe"},
		{"linkedin.com/in/jane-doe", "jane-doe"},
		{"https://fr.linkedin.com/in/jane-doe/", "jane-doe"},
		{"https://www.linkedin.com/in/jane-doe/?originalSubdomain=fr&trk=abc", "jane-doe"},
		{"https://www.linkedin.com/in/jane-doe#experience", "jane-doe"},
		{"https://www.linkedin.com/in/jane-doe/detail/contact-info/", "jane-doe"},
		{"https://www.linkedin.com/in/j%C3%B6hn-doe/", "jöhn-doe"},
		{"j%C3%B6hn-doe", "jöhn-doe"},
		{"jöhn-doe", "jöhn-doe"},
		{"https://WWW.LINKEDIN.COM/in/jane-doe-12345678/", "jane-doe-12345678"},
		{"https://www.linkedin.com/in/julien_crepieux", "julien_crepieux"},
		{memberID, memberID},
		{"https://www.linkedin.com/in/" + memberID + "/", memberID},
		{"https://www.linkedin.com/sales/lead/" + salesID + ",NAME_SEARCH,abc", salesID},
		{"https://www.linkedin.com/sales/lead/" + salesID + ",NAME_SEARCH,abc?_ntb=xyz", salesID},
		{"https://www.linkedin.com/sales/people/" + salesID + ",name,xyz", salesID},
		{"https://www.linkedin.com/sales/lead/" + salesID + "%2CNAME_SEARCH%2Cabc", salesID},
	}
	for _, tt := range tests {
		got, err := unipile.NormalizeIdentifier(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeIdentifier(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeIdentifierRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, why string
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"jane doe", "contains a space"},
		{"https://www.linkedin.com/in/jane doe", "contains a space"},
		{"jane\x00doe", "control character"},
		{"jane\u0007", "control character"},
		{"https://example.com/in/jane-doe", "not a linkedin.com URL"},
		{"https://linkedin.com.evil.example/in/jane-doe", "not a linkedin.com URL"},
		{"https://www.linkedin.com/company/acme/", "is not a person"},
		{"https://www.linkedin.com/in/", "no public identifier"},
		{"https://www.linkedin.com/in", "no public identifier"},
		{"https://www.linkedin.com/", "no profile"},
		{"https://www.linkedin.com/feed/", "not a person"},
		{"ftp://www.linkedin.com/in/jane", "not an http(s) URL"},
		{"https://www.linkedin.com:8443/in/jane", "unexpected port"},
		{"https://www.linkedin.com/sales/lead/not-an-id,NAME_SEARCH", "no member id"},
		{"https://www.linkedin.com/sales/search/people", "not a Sales Navigator"},
		{strings.Repeat("a", 101), "longer than 100"},
		{strings.Repeat("a", 3000), "too long"},
		{"jane%ZZ", "percent-encoding"},
		{"jane.doe", "not allowed"},
		{"---", "no letter or digit"},
		{"\xff\xfe", "UTF-8"},
	}
	for _, tt := range tests {
		got, err := unipile.NormalizeIdentifier(tt.in)
		if err == nil {
			t.Errorf("NormalizeIdentifier(%q) = %q, nil; want an error", tt.in, got)
			continue
		}
		if !errors.Is(err, unipile.ErrInvalidIdentifier) {
			t.Errorf("NormalizeIdentifier(%q) error %v does not wrap ErrInvalidIdentifier", tt.in, err)
		}
		if !strings.Contains(err.Error(), tt.why) {
			t.Errorf("NormalizeIdentifier(%q) error = %q; want it to say %q", tt.in, err, tt.why)
		}
	}
}

func TestIsProviderID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		memberID: true, salesID: true,
		"jane-doe": false, "ACoAA": false, "ACoAAAcDMMQBODyLwZrRcgYhrkCa fURGqva0U4E": false,
		"acoaaacdmmqbodylwzrrcgyhrkcafurgqva0u4e": false, "": false,
	} {
		if got := unipile.IsProviderID(in); got != want {
			t.Errorf("IsProviderID(%q) = %v; want %v", in, got, want)
		}
	}
}

// FuzzNormalizeIdentifier checks that normalising never panics, that what
// it accepts is a fixed point (normalising again gives the same), and that
// the result is a plain identifier.
func FuzzNormalizeIdentifier(f *testing.F) {
	for _, s := range []string{
		"jane-doe", "https://www.linkedin.com/in/jane-doe/?trk=x#y", "fr.linkedin.com/in/j%C3%B6hn-doe",
		"https://www.linkedin.com/sales/lead/" + salesID + ",NAME_SEARCH,abc", memberID,
		"https://www.linkedin.com/company/acme", "", " ", "%", "linkedin.com", "//linkedin.com/in/x",
		"https://www.linkedin.com/in/%2F", "a/b", "\u200bjane",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := unipile.NormalizeIdentifier(in)
		if err != nil {
			if !errors.Is(err, unipile.ErrInvalidIdentifier) {
				t.Fatalf("NormalizeIdentifier(%q) error %v does not wrap ErrInvalidIdentifier", in, err)
			}
			return
		}
		if got == "" || !utf8.ValidString(got) || strings.ContainsAny(got, "/?#% \t\n") {
			t.Fatalf("NormalizeIdentifier(%q) = %q, not a plain identifier", in, got)
		}
		again, err := unipile.NormalizeIdentifier(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeIdentifier(%q) = %q, but normalising that gives %q, %v", in, got, again, err)
		}
	})
}
