package store

import (
	"context"
	"fmt"
	"time"
)

// NotServedError is returned by Begin when BeginRequest.Serves refused the
// target's account: the caller cannot serve it (a worker without
// credentials for it), and nothing was reserved or changed.
type NotServedError struct {
	// Account is the target's account as Begin read it.
	Account *Account
	// Err is what Serves returned.
	Err error
}

func (e *NotServedError) Error() string {
	return fmt.Sprintf("cannot serve account %q (%s/%s): %v", e.Account.Name, e.Account.Provider, e.Account.CredentialsRef, e.Err)
}

func (e *NotServedError) Unwrap() error { return e.Err }

// HandBack gives a queued target back to the scheduler, due at until, with
// "waiting: reason" as its last error; its attempts, deferrals, the ledger
// and its account are left as they are. It returns ErrStale when the
// target is no longer queued (another worker or an operator took it).
func (s *Store) HandBack(ctx context.Context, targetID int64, until time.Time, reason string) error {
	tag, err := s.pool.Exec(ctx, handBackSQL, targetID, until, "waiting: "+reason, nil, []string{string(TargetQueued)})
	op := fmt.Sprintf("hand back target %d", targetID)
	if err != nil {
		return translate(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", op, ErrStale)
	}
	return nil
}
