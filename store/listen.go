package store

import (
	"context"
	"fmt"
)

// WakeChannel is the Postgres notification channel on which triggers
// announce new targets and changed controls (see the migrations).
const WakeChannel = "outreach_wake"

// ListenStarted is the payload Listen gives wake once its connection
// listens: notifications sent before were missed (the triggers' payloads
// are never empty).
const ListenStarted = ""

// Listen holds a connection that listens on WakeChannel and calls wake for
// each notification (with its payload: the table that changed, or
// "resolved"), until ctx ends or the connection fails (the error is
// returned; callers reconnect). It first calls wake with ListenStarted once
// the connection listens.
func (s *Store) Listen(ctx context.Context, wake func(payload string)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return translate("listen", err)
	}
	// The connection is left in LISTEN state: take it out of the pool.
	c := conn.Hijack()
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "LISTEN "+WakeChannel); err != nil {
		return translate("listen", err)
	}
	wake(ListenStarted)
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("listen: %w", err)
		}
		wake(n.Payload)
	}
}
