// Package poll is pgha's one retry loop: check a condition at an interval
// until it holds, fails for good, or the context ends.
package poll

import (
	"context"
	"time"
)

// Until calls check at once and then every interval until it reports done,
// returns an error, or ctx ends (then ctx's error is returned). A ticker, not
// a sleep: a slow check does not push the next one further out.
func Until(ctx context.Context, interval time.Duration, check func(ctx context.Context) (done bool, err error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := check(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// For is Until with its own deadline d.
func For(ctx context.Context, d, interval time.Duration, check func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return Until(ctx, interval, check)
}

// Detached is a context for cleanup after ctx may have ended (Ctrl-C): it
// keeps ctx's values, ignores its cancellation, and has a deadline of its
// own, so that no cleanup can hang pgha.
func Detached(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// Seen keeps what a wait's rounds saw, for the message when it fails. A
// round cut short by the wait's own deadline saw only that deadline ("no
// answer in time" in 0 ms), so it does not replace what an earlier round saw.
type Seen[T any] struct {
	v   T
	set bool
}

// Note records v, seen in the round whose context is ctx.
func (s *Seen[T]) Note(ctx context.Context, v T) {
	if ctx.Err() == nil || !s.set {
		s.v, s.set = v, true
	}
}

// Last is what the last round that ran to its end saw (or, when none did, the
// last round), and the zero value before any.
func (s *Seen[T]) Last() T { return s.v }
