package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntilStopsWhenDone(t *testing.T) {
	n := 0
	err := Until(context.Background(), time.Millisecond, func(context.Context) (bool, error) { n++; return n == 3, nil })
	if err != nil || n != 3 {
		t.Errorf("err %v after %d checks, want nil after 3", err, n)
	}
}

func TestUntilReturnsTheCheckError(t *testing.T) {
	boom := errors.New("boom")
	if err := Until(context.Background(), time.Millisecond, func(context.Context) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("err %v, want boom", err)
	}
}

func TestForEndsAtItsDeadline(t *testing.T) {
	start := time.Now()
	err := For(context.Background(), 30*time.Millisecond, 5*time.Millisecond, func(context.Context) (bool, error) { return false, nil })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("err %v after %s, want the deadline", err, time.Since(start))
	}
}

func TestSeenKeepsWhatARoundCutShortDidNotSee(t *testing.T) {
	var s Seen[string]
	ctx, cancel := context.WithCancel(context.Background())
	s.Note(ctx, "connection refused")
	cancel()
	s.Note(ctx, "no answer in time")
	if got := s.Last(); got != "connection refused" {
		t.Errorf("Last() = %q, want the complete round's", got)
	}
	var first Seen[string]
	first.Note(ctx, "no answer in time")
	if got := first.Last(); got != "no answer in time" {
		t.Errorf("with no complete round, Last() = %q, want the cut one's", got)
	}
}
