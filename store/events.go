package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventsChannel is the Postgres notification channel on which the event
// triggers announce new events (one notification per transaction).
const EventsChannel = "outreach_events"

// EventKind is what an event says happened (events.kind).
type EventKind string

// Event kinds written by the triggers of migration 00010.
const (
	EventTargetSent      EventKind = "target.sent"
	EventTargetFailed    EventKind = "target.failed"
	EventTargetSkipped   EventKind = "target.skipped"
	EventTargetAccepted  EventKind = "target.accepted"
	EventTargetWithdrawn EventKind = "target.withdrawn"
	EventAccountPaused   EventKind = "account.paused"
	EventAccountDisabled EventKind = "account.disabled"
	EventAccountResumed  EventKind = "account.resumed"
	EventCampaignDone    EventKind = "campaign.done"
)

// Event is one row of the event stream.
type Event struct {
	ID int64
	// XID is the writing transaction's id, the first key of the stream's
	// order (see EventCursor).
	XID        uint64
	At         time.Time
	Kind       EventKind
	AccountID  int64 // 0: none
	CampaignID int64 // 0: none
	TargetID   int64 // 0: none
	Data       json.RawMessage
}

// Cursor returns the position just after e.
func (e Event) Cursor() EventCursor { return EventCursor{XID: e.XID, ID: e.ID} }

// EventCursor is a position in the event stream, ordered by the writing
// transaction's id, then the event's id. The zero value is the start.
// Readers only read events whose transaction is older than every running
// transaction of the database (outreach_events_horizon), so no event ever
// appears before a position already read: a reader that continues from
// the last event it read misses none.
type EventCursor struct {
	XID uint64
	ID  int64
}

// EventFilter narrows a read of the stream; its zero value reads all.
type EventFilter struct {
	Kinds      []EventKind // only these kinds (none: all)
	CampaignID int64       // only this campaign's (0: all)
}

const eventsAfterSQL = `SELECT id, xid::text::bigint, at, kind, COALESCE(account_id, 0), COALESCE(campaign_id, 0),
		COALESCE(target_id, 0), data
	FROM events
	WHERE (xid, id) > ($1::text::xid8, $2)
	  AND xid < (SELECT outreach_events_horizon())
	  AND ($3::text[] IS NULL OR kind = ANY ($3))
	  AND ($4::bigint = 0 OR campaign_id = $4)
	ORDER BY xid, id
	LIMIT $5`

// EventsAfter returns at most limit events after cur that match f, in
// the stream's order, among those no running transaction can still add
// to (see EventCursor).
func (s *Store) EventsAfter(ctx context.Context, cur EventCursor, f EventFilter, limit int) ([]Event, error) {
	var kinds []string
	for _, k := range f.Kinds {
		kinds = append(kinds, string(k))
	}
	rows, err := s.pool.Query(ctx, eventsAfterSQL, fmt.Sprint(cur.XID), cur.ID, kinds, f.CampaignID, limit)
	if err != nil {
		return nil, translate("read events", err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		var xid int64
		var kind string
		err := r.Scan(&e.ID, &xid, &e.At, &kind, &e.AccountID, &e.CampaignID, &e.TargetID, &e.Data)
		e.XID, e.Kind = uint64(xid), EventKind(kind)
		return e, err
	})
	return evs, translate("read events", err)
}

// EventsHeld reports whether events after cur exist. A reader calls it
// when EventsAfter from cur returned none: true means the horizon held
// them back (a transaction older than theirs was running, in this
// database, or in another one that ended between the reader's snapshot
// and its look at pg_stat_activity, which counts to be safe), or they
// were committed since; either way the reader looks again shortly
// instead of waiting for the next notification. It does not ask the
// horizon again: the older transaction may end between the two reads,
// and events held back from the first would then not be held back at
// the second, and nobody would look for them.
func (s *Store) EventsHeld(ctx context.Context, cur EventCursor) (bool, error) {
	var held bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE (xid, id) > ($1::text::xid8, $2))`,
		fmt.Sprint(cur.XID), cur.ID).Scan(&held)
	return held, translate("read events", err)
}

// HeldRetry is how soon a reader of the stream looks again after its
// rounds-th read in a row (from 0) found nothing while EventsHeld said
// events were there: 100 ms, doubling with each round, up to poll (the
// webhook runner and `outreach events --follow`).
func HeldRetry(rounds int, poll time.Duration) time.Duration {
	return min(100*time.Millisecond<<min(rounds, 20), poll)
}

// EventCursorOf returns the position of the event id, so that a reader
// continues after it (0: the start). ErrNotFound if it does not exist.
func (s *Store) EventCursorOf(ctx context.Context, id int64) (EventCursor, error) {
	if id <= 0 {
		return EventCursor{}, nil
	}
	var xid int64
	err := s.pool.QueryRow(ctx, `SELECT xid::text::bigint FROM events WHERE id = $1`, id).Scan(&xid)
	if err != nil {
		return EventCursor{}, translate(fmt.Sprintf("event %d", id), err)
	}
	return EventCursor{XID: uint64(xid), ID: id}, nil
}

// RecordEvent records an event of kind with data (a JSON object; nil is
// {}) through outreach_event, for changes no trigger sees. It returns the
// event's id.
func (s *Store) RecordEvent(ctx context.Context, kind EventKind, accountID, campaignID, targetID int64, data json.RawMessage) (int64, error) {
	if data == nil {
		data = json.RawMessage(`{}`)
	}
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT outreach_event($1, NULLIF($2::bigint, 0), NULLIF($3::bigint, 0), NULLIF($4::bigint, 0), $5)`,
		string(kind), accountID, campaignID, targetID, data).Scan(&id)
	return id, translate("record event", err)
}

// ListenEvents holds a connection that listens on EventsChannel and calls
// notify for each notification, until ctx ends (nil) or the connection
// fails (the error; callers reconnect, and read the stream again since
// notifications may have been lost meanwhile).
func (s *Store) ListenEvents(ctx context.Context, notify func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return translate("listen for events", err)
	}
	c := conn.Hijack()
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "LISTEN "+EventsChannel); err != nil {
		return translate("listen for events", err)
	}
	notify() // events committed before LISTEN took effect
	for {
		if _, err := c.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("listen for events: %w", err)
		}
		notify()
	}
}
