package guard

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Record is one line of the guard's log (JSON on stdout, read back by
// `pgha status` and failover-test through the engine's log of the container).
type Record struct {
	Time time.Time `json:"time"`
	// Event is what the guard reacted to: die, pause, reconcile, or its own
	// start, connected, disconnected, stop.
	Event     string `json:"event"`
	Member    string `json:"member,omitempty"`
	Container string `json:"container,omitempty"`
	// Action is set on decisions only: delete (the leader key) or none.
	Action  string `json:"action,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason"`
	// EventTime is the engine's time of the event decided on.
	EventTime *time.Time `json:"eventTime,omitempty"`
	// DecisionMs is from the engine's event to the leader key deleted;
	// ConfirmMs of it is the wait for the container list to confirm the
	// exit (Docker 20.10 emits die before its post-exit cleanup and updates
	// the list only after it).
	DecisionMs float64 `json:"decisionMs,omitempty"`
	ConfirmMs  float64 `json:"confirmMs,omitempty"`
}

// Actions and outcomes of a decision.
const (
	ActionDelete = "delete"
	ActionNone   = "none"

	OutcomeDeleted   = "deleted"    // the leader key is gone
	OutcomeLeftAlone = "left alone" // nothing to do, or not confirmed
	OutcomeChanged   = "key changed, not deleted"
	OutcomeFailed    = "failed" // etcd or the engine did not answer
)

// IsDecision says whether the record is a decision (not a connection note).
func (r Record) IsDecision() bool { return r.Action != "" }

// Summary is the decision in a few words: "deleted the leader key of
// patroni2 at 12:03:04.512".
func (r Record) Summary() string {
	at := r.Time.Local().Format("15:04:05.000")
	switch {
	case r.Outcome == OutcomeDeleted:
		return fmt.Sprintf("deleted the leader key of %s at %s (%s)", r.Member, at, r.Event)
	case r.Member != "":
		return fmt.Sprintf("%s: %s at %s (%s)", r.Member, r.Outcome, at, r.Event)
	}
	return fmt.Sprintf("%s at %s (%s)", r.Outcome, at, r.Event)
}

// ParseLog reads the records of a guard's log; lines that are not records
// (a panic's trace, say) are skipped.
func ParseLog(r io.Reader) []Record {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec Record
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Event != "" {
			out = append(out, rec)
		}
	}
	return out
}

// DecisionOn is the latest decision about member's container on an engine
// event (die or pause) logged at or after since; nil when there is none.
func DecisionOn(recs []Record, member string, since time.Time) *Record {
	for i := len(recs) - 1; i >= 0 && !recs[i].Time.Before(since); i-- {
		if r := recs[i]; r.IsDecision() && r.Member == member && (r.Event == EventDie || r.Event == EventPause) {
			return &recs[i]
		}
	}
	return nil
}

// LastDecision is the latest decision among records, nil when there is none.
func LastDecision(recs []Record) *Record {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].IsDecision() {
			return &recs[i]
		}
	}
	return nil
}
