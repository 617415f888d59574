package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pgha/pgha/pkg/guard"
)

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
		if got := guardHealth(tc.state, tc.watching, tc.last); got != tc.want {
			t.Errorf("guardHealth(%q, %v, %+v) = %q, want %q", tc.state, tc.watching, tc.last, got, tc.want)
		}
	}
}

// On a terminal a progress line longer than the terminal wraps at its words,
// indented under the text; elsewhere it is left whole.
func TestProgressLinesFitTheTerminal(t *testing.T) {
	t.Setenv("COLUMNS", "40")
	long := "Patroni ready: e2e-testtables-5f3a-patroni2 primary, 2 replicas streaming (2.6s)"
	var tty, plain bytes.Buffer
	newStatus(&tty, true, false, false).End(true, long)
	newStatus(&plain, false, false, false).End(true, long)
	if plain.String() != "✓ "+long+"\n" {
		t.Errorf("off a terminal: %q", plain.String())
	}
	out := strings.TrimPrefix(tty.String(), "\r\033[K")
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if w := len([]rune(l)); w > 40 {
			t.Errorf("line %q is %d wide, over 40:\n%s", l, w, out)
		}
	}
	if !strings.HasPrefix(out, "✓ Patroni ready:") || !strings.Contains(out, "\n  ") || strings.Count(out, "\n") < 2 {
		t.Errorf("not wrapped with an indent:\n%s", out)
	}
}
