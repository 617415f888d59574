package progress

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type lines struct{ got []string }

func (l *lines) Start(t string) { l.got = append(l.got, "start "+t) }
func (l *lines) Detail(string)  {}
func (l *lines) End(ok bool, s string) {
	l.got = append(l.got, map[bool]string{true: "ok ", false: "fail "}[ok]+s)
}
func (l *lines) Info(m string) { l.got = append(l.got, "info "+m) }
func (l *lines) Warn(m string) { l.got = append(l.got, "warn "+m) }

// Steps run in order, each line opened and closed once; a skipped step shows
// nothing, a silent one runs without a line, the first error stops the run.
func TestRun(t *testing.T) {
	var l lines
	ran := []string{}
	step := func(name string, err error) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { ran = append(ran, name); return name + " done", err }
	}
	boom := errors.New("boom")
	err := Run(context.Background(), &l, []Named{
		{Title: "First", Run: step("first", nil)},
		{Run: step("silent", nil)},
		{Title: "Skipped", Run: step("skipped", nil), Skip: func() bool { return true }},
		{Title: "Failing", Run: step("failing", boom)},
		{Title: "Never", Run: step("never", nil)},
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
	if got := strings.Join(ran, ","); got != "first,silent,failing" {
		t.Errorf("ran %s", got)
	}
	want := []string{"start First", "ok first done (", "start Failing", "fail "}
	if len(l.got) != len(want) {
		t.Fatalf("lines %q", l.got)
	}
	for i := range want {
		if !strings.HasPrefix(l.got[i], want[i]) {
			t.Errorf("line %d = %q, want %q…", i, l.got[i], want[i])
		}
	}
}

func TestRunStopsOnACancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := Run(ctx, Discard{}, []Named{{Title: "x", Run: func(context.Context) (string, error) { ran = true; return "", nil }}})
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("err %v, ran %v", err, ran)
	}
}
