package altegio_test

import (
	"testing"

	"github.com/outreach-dev/outreach/provider/altegio"
)

func TestNormalizeIdentifier(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{"Olivia@Example.COM", "olivia@example.com", false},
		{"+33 6 12-34-56-78", "+33612345678", false},
		{"06 12 34 56 78", "0612345678", false},
		{"call me", "", true},
		{"Olivia <olivia@example.com>", "", true},
		{"12345", "", true},
	} {
		got, err := altegio.NormalizeIdentifier(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("NormalizeIdentifier(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if got.Normalized != tc.want || got.ProviderID != tc.want {
			t.Errorf("NormalizeIdentifier(%q) = %q, %q; want %q for both", tc.in, got.Normalized, got.ProviderID, tc.want)
		}
	}
	if r := altegio.Rules(); r.MaxMessageChars != 0 {
		t.Errorf("MaxMessageChars = %d, want 0 (no note)", r.MaxMessageChars)
	}
}
