package partoo_test

import (
	"testing"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/partoo"
)

func TestNormalizeIdentifier(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{" 5f3a9c ", "5f3a9c", false},
		{"a b", "", true},
		{"a/b", "", true},
		{"", "", true},
	} {
		got, err := partoo.NormalizeIdentifier(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("NormalizeIdentifier(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if got.Normalized != tc.want || got.ProviderID != tc.want {
			t.Errorf("NormalizeIdentifier(%q) = %q, %q; want %q for both", tc.in, got.Normalized, got.ProviderID, tc.want)
		}
	}
	r := partoo.Rules()
	if r.MaxMessageChars != 0 {
		t.Errorf("MaxMessageChars = %d, want 0 (no note)", r.MaxMessageChars)
	}
	if got := r.ErrorTypes(provider.KindRateLimited); len(got) != 1 || got[0] != "too_many_requests" {
		t.Errorf("ErrorTypes(rate_limited) = %v, want [too_many_requests]", got)
	}
}
