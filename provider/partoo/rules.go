package partoo

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/outreach-dev/outreach/provider"
)

// Rules returns what outreach knows of Partoo beyond the Client: a target
// is a Partoo user id, which needs no lookup; an invitation has no note;
// and the error types of its classification by kind (too_soon, the
// five-minute rule, is KindTooSoon).
func Rules() provider.Rules {
	return provider.Rules{Normalize: NormalizeIdentifier, ErrorTypes: errorTypes}
}

// NormalizeIdentifier checks a Partoo user id: trimmed, not empty, at most
// 64 bytes, without spaces, slashes or control characters. The id is its
// own provider id.
func NormalizeIdentifier(identifier string) (provider.Identifier, error) {
	s := strings.TrimSpace(identifier)
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '/' || unicode.IsControl(r) }) || len(s) > 64 {
		return provider.Identifier{}, fmt.Errorf("invalid Partoo user id %q", identifier)
	}
	return provider.Identifier{Normalized: s, ProviderID: s}, nil
}

// errorTypes lists the error types parseError gives of kind k.
func errorTypes(k provider.Kind) []string {
	types := provider.TypesOf(classification, func(_ int, c class) (string, provider.Kind) { return c.Type, c.Kind }, k)
	if k == provider.KindTooSoon {
		types = append(types, "too_soon")
	}
	return types
}
