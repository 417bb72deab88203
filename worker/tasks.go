// Package worker holds outreach's asynq task handlers: reserve a send slot
// against the account's durable limits, call the provider, classify the
// answer with the outcome policy and record it in Postgres.
package worker

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/hibiken/asynq"
)

// Task types and the queues they run in.
const (
	TypeInvite  = "invite:send"
	TypeResolve = "target:resolve"

	QueueInvites = "invites"
	QueueLookups = "lookups"
)

// Payload is the body of every task: ids only, never a secret or a
// message (the dashboard shows payloads).
type Payload struct {
	TargetID int64 `json:"target_id"`
	// Gen is the target's task generation (store.Target.TaskGen): 0 for
	// the first task, more once the target was recovered from a worker
	// that died. The reservation refuses a task of another generation.
	Gen int `json:"gen,omitempty"`
}

// TaskID is the deterministic id of a target's task of the given type
// ("invite:42", "resolve:42"), so that enqueueing it twice is harmless. (No
// hyphen: the dashboard shortens ids at the first one.)
func TaskID(typ string, targetID int64) string {
	if typ == TypeResolve {
		return "resolve:" + strconv.FormatInt(targetID, 10)
	}
	return "invite:" + strconv.FormatInt(targetID, 10)
}

// TaskIDGen is the id of a target's task of generation gen: TaskID for 0,
// "invite:42:2" for 2. A recovered target gets a new id, since asynq may
// still hold its dead worker's task under the old one.
func TaskIDGen(typ string, targetID int64, gen int) string {
	if gen == 0 {
		return TaskID(typ, targetID)
	}
	return TaskID(typ, targetID) + ":" + strconv.Itoa(gen)
}

// NewTask builds the task for a target and the options that place it in
// its queue under its deterministic id. MaxRetry is high because deferrals
// never count as retries (see RetryDelay) and transient failures are
// counted in Postgres, not by asynq.
func NewTask(typ string, targetID int64) (*asynq.Task, []asynq.Option) {
	return NewTaskGen(typ, targetID, 0)
}

// NewTaskGen is NewTask for the task generation gen (see TaskIDGen).
func NewTaskGen(typ string, targetID int64, gen int) (*asynq.Task, []asynq.Option) {
	b, err := json.Marshal(Payload{TargetID: targetID, Gen: gen})
	if err != nil {
		panic(fmt.Sprintf("marshal payload: %v", err)) // cannot happen for an int64
	}
	queue := QueueInvites
	if typ == TypeResolve {
		queue = QueueLookups
	}
	return asynq.NewTask(typ, b), []asynq.Option{
		asynq.TaskID(TaskIDGen(typ, targetID, gen)),
		asynq.Queue(queue),
		asynq.MaxRetry(maxRetry),
	}
}

// maxRetry is asynq's retry budget per task. Only failures that are not
// ours to classify (Postgres unreachable, a panic) count against it; at
// one a minute at most, it lasts weeks.
const maxRetry = 100000

func parsePayload(t *asynq.Task) (Payload, error) {
	var p Payload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.TargetID <= 0 || p.Gen < 0 {
		return p, fmt.Errorf("bad %s payload %q: %v: %w", t.Type(), t.Payload(), err, asynq.SkipRetry)
	}
	return p, nil
}
