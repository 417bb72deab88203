package scheduler

import (
	"testing"

	"github.com/outreach-dev/outreach/provider"
)

// TestNormalize checks that each provider's identifiers go through its own
// rules (the rows of each provider are tested in its package:
// provider/unipile, provider/partoo, provider/altegio), and that an
// unknown provider fails the target.
func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		provider        provider.Name
		in              string
		wantID, wantPID string
		wantErr         bool
	}{
		{"unipile", "https://www.linkedin.com/in/jane-doe/?utm=x", "jane-doe", "", false},
		{"unipile", "ACoAAAbcdefghijklmnopqrstuvwxyz012", "ACoAAAbcdefghijklmnopqrstuvwxyz012", "ACoAAAbcdefghijklmnopqrstuvwxyz012", false},
		{"unipile", "https://example.com/in/x", "", "", true},
		{"partoo", " 5f3a9c ", "5f3a9c", "5f3a9c", false},
		{"partoo", "a b", "", "", true},
		{"altegio", "Olivia@Example.COM", "olivia@example.com", "olivia@example.com", false},
		{"altegio", "call me", "", "", true},
		{"myspace", "x", "", "", true},
	} {
		got := Normalize(tc.provider, tc.in)
		if (got.Err != nil) != tc.wantErr {
			t.Errorf("Normalize(%s, %q) error = %v, want error %v", tc.provider, tc.in, got.Err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if got.Identifier != tc.wantID || got.ProviderID != tc.wantPID {
			t.Errorf("Normalize(%s, %q) = %q, %q; want %q, %q", tc.provider, tc.in, got.Identifier, got.ProviderID, tc.wantID, tc.wantPID)
		}
	}
}
