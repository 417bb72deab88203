package provider_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/altegio"
	"github.com/outreach-dev/outreach/provider/partoo"
	"github.com/outreach-dev/outreach/provider/simulator"
	"github.com/outreach-dev/outreach/provider/unipile"
)

// TestWrongKeyReadsAsWhatItIs: a key the provider (here the simulator)
// refuses with 401 gives an error that says the provider refused the key
// and names the settings to check, without the key.
func TestWrongKeyReadsAsWhatItIs(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(simulator.New(simulator.Config{}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	const wrong = "wrongkey0123456789"
	uc, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: wrong})
	if err != nil {
		t.Fatal(err)
	}
	uc2, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: wrong, KeySetting: "UNIPILE_API_KEY_SALES"})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := partoo.New(partoo.Config{BaseURL: srv.URL, APIKey: wrong})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := altegio.New(altegio.Config{BaseURL: srv.URL, PartnerToken: wrong, UserToken: simulator.DefaultAltegioUserToken})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want []string
	}{
		{"unipile invite", func() error {
			_, err := uc.Invite(ctx, provider.Invitation{AccountID: "acc", RecipientID: simulator.ProviderID("jane-doe")})
			return err
		}, []string{"Unipile refused the API key", "UNIPILE_API_KEY", "UNIPILE_API_KEY_<REF>"}},
		{"unipile resolve", func() error {
			_, err := uc.Resolve(ctx, "acc", "jane-doe")
			return err
		}, []string{"Unipile refused the API key", "UNIPILE_API_KEY"}},
		{"unipile named setting", func() error {
			_, err := uc2.Resolve(ctx, "acc", "jane-doe")
			return err
		}, []string{"Unipile refused the API key", "UNIPILE_API_KEY_SALES"}},
		{"partoo invite", func() error {
			_, err := pc.Invite(ctx, provider.Invitation{RecipientID: "user-1"})
			return err
		}, []string{"Partoo refused the API key", "PARTOO_API_KEY", "PARTOO_API_KEY_<REF>"}},
		{"altegio invite", func() error {
			_, err := ac.Invite(ctx, provider.Invitation{AccountID: "42", RecipientID: "jane@example.com"})
			return err
		}, []string{"Altegio refused the tokens", "ALTEGIO_PARTNER_TOKEN", "ALTEGIO_USER_TOKEN"}},
	}
	for _, tt := range tests {
		err := tt.call()
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.HTTPStatus != 401 || pe.Kind != provider.KindConfig || pe.Scope != provider.ScopeProcess {
			t.Errorf("%s: got %v; want a 401 configuration error of this process", tt.name, err)
			continue
		}
		msg := err.Error()
		t.Log(msg)
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q does not say %q", tt.name, msg, w)
			}
		}
		if strings.Contains(msg, wrong) {
			t.Errorf("%s: error %q holds the key", tt.name, msg)
		}
	}
}
