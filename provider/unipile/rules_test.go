package unipile_test

import (
	"slices"
	"testing"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/unipile"
)

// TestRules checks what the scheduler and the worker ask of Unipile: a
// slug needs a lookup, a member id does not, the note takes 300
// characters, and the error types the worker counts by kind.
func TestRules(t *testing.T) {
	r := unipile.Rules()
	for _, tc := range []struct {
		in, wantID, wantPID string
		wantErr             bool
	}{
		{"https://www.linkedin.com/in/jane-doe/?utm=x", "jane-doe", "", false},
		{"ACoAAAbcdefghijklmnopqrstuvwxyz012", "ACoAAAbcdefghijklmnopqrstuvwxyz012", "ACoAAAbcdefghijklmnopqrstuvwxyz012", false},
		{"https://example.com/in/x", "", "", true},
	} {
		got, err := r.Normalize(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("Normalize(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if got.Normalized != tc.wantID || got.ProviderID != tc.wantPID {
			t.Errorf("Normalize(%q) = %q, %q; want %q, %q", tc.in, got.Normalized, got.ProviderID, tc.wantID, tc.wantPID)
		}
	}
	if r.MaxMessageChars != 300 {
		t.Errorf("MaxMessageChars = %d, want 300", r.MaxMessageChars)
	}
	for _, tc := range []struct {
		kind provider.Kind
		want []string
	}{
		{provider.KindRateLimited, []string{"too_many_requests"}},
		{provider.KindCannotResendYet, []string{"cannot_resend_within_24hrs", "cannot_resend_yet"}},
	} {
		got := r.ErrorTypes(tc.kind)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("ErrorTypes(%s) = %v, want it to hold %s", tc.kind, got, w)
			}
		}
	}
}
