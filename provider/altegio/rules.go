package altegio

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/outreach-dev/outreach/provider"
)

// Rules returns what outreach knows of Altegio beyond the Client: a target
// is an email or a phone number, which needs no lookup; an invitation has
// no note; and the error types of its classification by kind.
func Rules() provider.Rules {
	return provider.Rules{Normalize: NormalizeIdentifier, ErrorTypes: errorTypes}
}

// NormalizeIdentifier normalises an email (lower-cased, a bare address
// without a display name) or a phone number (6 to 15 digits, separators
// " -()." dropped, a leading + kept). Either is its own provider id.
func NormalizeIdentifier(identifier string) (provider.Identifier, error) {
	s := strings.TrimSpace(identifier)
	if strings.Contains(s, "@") {
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" {
			return provider.Identifier{}, fmt.Errorf("invalid email %q", identifier)
		}
		e := strings.ToLower(a.Address)
		return provider.Identifier{Normalized: e, ProviderID: e}, nil
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
		return provider.Identifier{}, fmt.Errorf("invalid email or phone number %q", identifier)
	}
	if strings.HasPrefix(s, "+") {
		digits = "+" + digits
	}
	return provider.Identifier{Normalized: digits, ProviderID: digits}, nil
}

// errorTypes lists the error types parseError gives of kind k.
func errorTypes(k provider.Kind) []string {
	types := provider.TypesOf(classification, func(_ int, c class) (string, provider.Kind) { return c.Type, c.Kind }, k)
	if k == provider.KindAlreadyInvited {
		types = append(types, "already_invited")
	}
	return types
}
