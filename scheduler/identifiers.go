package scheduler

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/outreach-dev/outreach/provider/unipile"
	"github.com/outreach-dev/outreach/store"
)

// Normalize normalises a target's identifier for its account's provider:
// a LinkedIn URL or slug for Unipile (a member id needs no lookup), a user
// id for Partoo, an email or phone number for Altegio.
func Normalize(provider, identifier string) store.Normalized {
	s := strings.TrimSpace(identifier)
	switch provider {
	case "unipile":
		n, err := unipile.NormalizeIdentifier(s)
		if err != nil {
			return store.Normalized{Err: err}
		}
		if unipile.IsProviderID(n) {
			return store.Normalized{Identifier: n, ProviderID: n}
		}
		return store.Normalized{Identifier: n}
	case "partoo":
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '/' || unicode.IsControl(r) }) || len(s) > 64 {
			return store.Normalized{Err: fmt.Errorf("invalid Partoo user id %q", identifier)}
		}
		return store.Normalized{Identifier: s, ProviderID: s}
	case "altegio":
		if strings.Contains(s, "@") {
			a, err := mail.ParseAddress(s)
			if err != nil || a.Name != "" {
				return store.Normalized{Err: fmt.Errorf("invalid email %q", identifier)}
			}
			e := strings.ToLower(a.Address)
			return store.Normalized{Identifier: e, ProviderID: e}
		}
		digits := strings.Map(func(r rune) rune {
			if unicode.IsDigit(r) {
				return r
			}
			if strings.ContainsRune(" -().", r) {
				return -1
			}
			return 'x'
		}, strings.TrimPrefix(s, "+"))
		if len(digits) < 6 || len(digits) > 15 || strings.Contains(digits, "x") {
			return store.Normalized{Err: fmt.Errorf("invalid email or phone number %q", identifier)}
		}
		if strings.HasPrefix(s, "+") {
			digits = "+" + digits
		}
		return store.Normalized{Identifier: digits, ProviderID: digits}
	}
	return store.Normalized{Err: errors.New("unknown provider " + provider)}
}
