package provider

import (
	"context"
	"time"
)

// SentInvitation is one pending invitation sent by an account, as its
// provider's list of sent invitations shows it.
type SentInvitation struct {
	// ID is the invitation id, as given to Withdrawer.Cancel.
	ID string
	// ProviderID and PublicID identify the invited person.
	ProviderID string
	PublicID   string
	// Message is the note sent with it, if any.
	Message string
	// Date is when it was sent, zero if the provider did not say.
	Date time.Time
}

// Withdrawer is implemented by clients whose provider lists an account's
// pending invitations and withdraws them (Unipile).
type Withdrawer interface {
	// ListSent lists the pending invitations sent by the account
	// accountID, every page of them.
	ListSent(ctx context.Context, accountID string) ([]SentInvitation, error)
	// Cancel withdraws the pending invitation invitationID of accountID.
	Cancel(ctx context.Context, accountID, invitationID string) error
}
