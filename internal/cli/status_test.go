package cli

import (
	"bytes"
	"strings"
	"testing"
)

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
