package scheduler

import (
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		provider, in    string
		wantID, wantPID string
		wantErr         bool
	}{
		{"unipile", "https://www.linkedin.com/in/jane-doe/?utm=x", "jane-doe", "", false},
		{"unipile", "ACoAAAbcdefghijklmnopqrstuvwxyz012", "ACoAAAbcdefghijklmnopqrstuvwxyz012", "ACoAAAbcdefghijklmnopqrstuvwxyz012", false},
		{"unipile", "https://example.com/in/x", "", "", true},
		{"partoo", " 5f3a9c ", "5f3a9c", "5f3a9c", false},
		{"partoo", "a b", "", "", true},
		{"altegio", "Olivia@Example.COM", "olivia@example.com", "olivia@example.com", false},
		{"altegio", "+33 6 12-34-56-78", "+33612345678", "+33612345678", false},
		{"altegio", "06 12 34 56 78", "0612345678", "0612345678", false},
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
