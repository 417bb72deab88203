package unipile_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/outreach-dev/outreach/provider"
	"github.com/outreach-dev/outreach/provider/internal/contract"
	"github.com/outreach-dev/outreach/provider/unipile"
)

// The answers below have the full shapes of Unipile's official Node SDK
// (npm unipile-node-sdk 1.9.3): dist/types/users/user-profile.types.d.ts
// (LinkedinProfileApiResponseSchema, with nulls where it allows them and
// the optional sections filled), user-invitation-sent-list.types.d.ts and
// user-invitation-cancel.types.d.ts. They pass the contract, and the
// client reads what it needs from them.
const (
	sdkProfile = `{"object":"UserProfile","provider":"LINKEDIN","provider_id":"ACoAAfull0000000000000000000",
		"is_self":false,"public_identifier":null,"location":"Paris","headline":"VP Sales",
		"first_name":"Jane","last_name":null,"profile_picture_url":"https://x/p.jpg",
		"public_profile_url":"https://www.linkedin.com/in/jane","summary":"s",
		"education":[{"school":"X","start":null,"end":null}],"languages":[{"name":"French"}],
		"skills":[{"name":"Sales","endorsement_count":3}],"certifications":[],
		"network_distance":"SECOND_DEGREE","contact_info":{"emails":["j@x.io"],"socials":[{"type":"x","name":"j"}]},
		"websites":["https://jane.example"],"birthdate":{"month":1,"day":2},
		"primary_locale":{"country":"FR","language":"fr"},"hashtags":[],"can_send_inmail":false,
		"is_open_profile":false,"is_premium":true,"is_influencer":false,"is_creator":false,
		"is_hiring":false,"is_open_to_work":false,"is_saved_lead":false,"is_crm_imported":false,
		"is_relationship":false,"invitation":{"type":"SENT","status":"PENDING"},
		"work_experience":[{"position":"VP","company":"Acme","start":null,"end":null,"current":true}],
		"volunteering_experience":[],"follower_count":10,"connections_count":5,"shared_connections_count":1}`
	sdkSentList = `{"object":"InvitationList","cursor":null,"items":[
		{"object":"InvitationSent","id":"inv-1","date":"Sent 2 days ago",
		 "specifics":{"provider":"LINKEDIN","shared_secret":"s"},
		 "parsed_datetime":"2026-11-28T10:00:00.000Z","invited_user":"Jane Doe",
		 "invited_user_id":"ACoAAfull0000000000000000000","invited_user_public_id":"jane",
		 "invited_user_description":"VP Sales","invitation_text":null,
		 "inviter":{"inviter_name":"Me","inviter_id":"i","inviter_public_identifier":"me","inviter_description":null}},
		{"object":"InvitationSent","id":"inv-2","date":"Sent today","parsed_datetime":null,
		 "invited_user":null,"invited_user_id":null,"invited_user_public_id":null,
		 "invited_user_description":null,"invitation_text":"Hello"}]}`
	sdkCanceled = `{"object":"InvitationCanceled"}`
)

func TestClientReadsSDKShapes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/users/invite/sent":
			w.Write([]byte(sdkSentList))
		case r.Method == http.MethodDelete:
			w.Write([]byte(sdkCanceled))
		default:
			w.Write([]byte(sdkProfile))
		}
	}))
	defer srv.Close()
	tr := contract.NewTransport(t, srv.Client().Transport, contract.Unipile)
	c, err := unipile.New(unipile.Config{BaseURL: srv.URL, APIKey: "test-key-123", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	p, err := c.Resolve(ctx, "acc", "jane")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := provider.Profile{ProviderID: "ACoAAfull0000000000000000000", FirstName: "Jane", Headline: "VP Sales",
		NetworkDistance: "SECOND_DEGREE", InvitationType: "SENT", InvitationStatus: "PENDING"}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("Resolve mismatch (-want +got):\n%s", diff)
	}

	l, err := c.ListSent(ctx, "acc")
	if err != nil {
		t.Fatalf("ListSent: %v", err)
	}
	wantList := []unipile.SentInvitation{
		{ID: "inv-1", ProviderID: "ACoAAfull0000000000000000000", PublicID: "jane",
			Date: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)},
		{ID: "inv-2", Message: "Hello"},
	}
	if diff := cmp.Diff(wantList, l); diff != "" {
		t.Errorf("ListSent mismatch (-want +got):\n%s", diff)
	}

	if err := c.Cancel(ctx, "acc", "inv-1"); err != nil {
		t.Errorf("Cancel: %v", err)
	}
	if n := tr.Validated(); n != 3 {
		t.Errorf("validated %d exchanges; want 3", n)
	}
}
