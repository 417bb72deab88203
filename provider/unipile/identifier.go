package unipile

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidIdentifier is wrapped by every error of NormalizeIdentifier;
// the wrapping error says why and quotes the input.
var ErrInvalidIdentifier = errors.New("invalid LinkedIn identifier")

const (
	// maxIdentifierLen bounds the raw input, in bytes.
	maxIdentifierLen = 2048
	// maxSlugLen bounds a public identifier, in characters (LinkedIn
	// allows 3 to 100 for a custom URL).
	maxSlugLen = 100
)

// NormalizeIdentifier turns what a user typed for a LinkedIn person into
// the identifier Unipile's profile lookup takes, so that one person always
// maps to one string and no query parameter reaches the lookup (a URL with
// query parameters can resolve to the wrong profile).
//
// It accepts:
//   - a public identifier (slug) such as "jane-doe", returned lower-cased
//     and percent-decoded ("j%C3%B6hn-doe" gives "jöhn-doe");
//   - a profile URL with or without scheme, www or a country subdomain
//     (fr.linkedin.com), trailing slash, query, fragment, or a suffix such
//     as /in/<slug>/detail/contact-info/;
//   - a Sales Navigator URL, /sales/lead/<id>,NAME_SEARCH,… or
//     /sales/people/<id>,…, which gives the member id;
//   - a provider id ("ACoAA…", "ACwAA…", see IsProviderID), returned as is
//     since it needs no lookup.
//
// Anything else (empty, spaces inside, control characters, other hosts,
// company or school pages, "/in/" without a slug, too long) gives an error
// wrapping ErrInvalidIdentifier.
func NormalizeIdentifier(s string) (string, error) {
	in := s
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", invalid(in, "empty")
	case len(s) > maxIdentifierLen:
		return "", invalid(in, "too long")
	case !utf8.ValidString(s):
		return "", invalid(in, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", invalid(in, "contains a control character")
		}
		if unicode.IsSpace(r) {
			return "", invalid(in, "contains a space")
		}
	}
	if IsProviderID(s) {
		return s, nil
	}
	if !strings.Contains(s, "/") && !strings.Contains(strings.ToLower(s), "linkedin.") {
		return slug(in, s)
	}
	return fromURL(in, s)
}

func fromURL(in, s string) (string, error) {
	raw := s
	if !strings.Contains(raw, "://") {
		raw = "https://" + strings.TrimPrefix(raw, "//")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", invalid(in, "not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", invalid(in, "not an http(s) URL")
	}
	host := strings.ToLower(u.Hostname())
	if host != "linkedin.com" && !strings.HasSuffix(host, ".linkedin.com") {
		return "", invalid(in, "not a linkedin.com URL")
	}
	if u.Port() != "" || u.User != nil {
		return "", invalid(in, "unexpected port or user in URL")
	}
	var parts []string
	for _, p := range strings.Split(u.EscapedPath(), "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "", invalid(in, "no profile in URL")
	}
	switch strings.ToLower(parts[0]) {
	case "in":
		if len(parts) < 2 {
			return "", invalid(in, "no public identifier after /in/")
		}
		return slug(in, parts[1])
	case "sales":
		if len(parts) < 3 || (parts[1] != "lead" && parts[1] != "people") {
			return "", invalid(in, "not a Sales Navigator lead or people URL")
		}
		seg, err := url.PathUnescape(parts[2])
		if err != nil {
			return "", invalid(in, "bad percent-encoding")
		}
		id, _, _ := strings.Cut(seg, ",")
		if !IsProviderID(id) {
			return "", invalid(in, "no member id in Sales Navigator URL")
		}
		return id, nil
	case "company", "school", "showcase", "groups", "jobs", "feed", "posts", "pulse", "events":
		return "", invalid(in, "a /"+strings.ToLower(parts[0])+"/ page is not a person")
	default:
		return "", invalid(in, "not a profile URL")
	}
}

// slug validates and normalises a public identifier (possibly
// percent-encoded).
func slug(in, s string) (string, error) {
	dec, err := url.PathUnescape(s)
	if err != nil {
		return "", invalid(in, "bad percent-encoding")
	}
	if !utf8.ValidString(dec) {
		return "", invalid(in, "not valid UTF-8 once decoded")
	}
	if IsProviderID(dec) {
		return dec, nil
	}
	n := 0
	for _, r := range dec {
		n++
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' {
			return "", invalid(in, fmt.Sprintf("character %q not allowed in a public identifier", r))
		}
	}
	switch {
	case n == 0:
		return "", invalid(in, "empty public identifier")
	case n > maxSlugLen:
		return "", invalid(in, "public identifier longer than 100 characters")
	case strings.Trim(dec, "-_") == "":
		return "", invalid(in, "public identifier has no letter or digit")
	}
	return strings.ToLower(dec), nil
}

func invalid(in, why string) error {
	if len(in) > 200 {
		in = in[:200] + "…"
	}
	return fmt.Errorf("%w: %s: %q", ErrInvalidIdentifier, why, in)
}

// IsProviderID reports whether s looks like a LinkedIn member id as used by
// Unipile ("ACoAAAcDMMQBODyLwZrRcgYhrkCafURGqva0U4E", or the Sales Navigator
// form starting "ACwAA"), which needs no profile lookup to be invited.
func IsProviderID(s string) bool {
	if len(s) < 20 || len(s) > 80 {
		return false
	}
	if !strings.HasPrefix(s, "ACoAA") && !strings.HasPrefix(s, "ACwAA") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
