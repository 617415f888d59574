package cluster

import (
	"testing"
	"time"

	"github.com/pgha/pgha/pkg/guard"
)

// The guard's cell in the status table says what matters in a few words.
func TestGuardHealthIsShort(t *testing.T) {
	at := time.Date(2026, 11, 26, 19, 31, 6, 930e6, time.Local)
	for _, tc := range []struct {
		state    string
		watching bool
		last     *guard.Record
		want     string
	}{
		{"exited (2)", false, nil, "-"},
		{"running", false, nil, "not watching"},
		{"running", true, nil, "watching"},
		{"running", true, &guard.Record{Time: at, Event: "reconcile", Action: guard.ActionNone, Outcome: guard.OutcomeLeftAlone}, "watching"},
		{"running", true, &guard.Record{Time: at, Event: "die", Member: "patroni2", Action: guard.ActionDelete, Outcome: guard.OutcomeDeleted}, "watching; deleted key 19:31:06"},
		{"running", true, &guard.Record{Time: at, Event: "die", Member: "patroni2", Action: guard.ActionDelete, Outcome: guard.OutcomeFailed}, "watching; failed 19:31:06"},
	} {
		g := GuardState{State: tc.state, Watching: tc.watching, LastDecision: tc.last}
		if got := g.Health(); got != tc.want {
			t.Errorf("Health(%q, %v, %+v) = %q, want %q", tc.state, tc.watching, tc.last, got, tc.want)
		}
	}
}
