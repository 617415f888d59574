package verify

import (
	"context"
	"testing"
	"time"
)

// A round that RunUntil's own deadline cuts short fails every check with "no
// answer in time"; the report must be the last round that ran to its end.
func TestRunUntilKeepsTheLastCompleteRound(t *testing.T) {
	rounds := 0
	r := runUntil(context.Background(), 300*time.Millisecond, 50*time.Millisecond, func(ctx context.Context) Report {
		rounds++
		if rounds == 1 {
			return Report{Checks: []Check{{Name: "patroni1", Detail: "connection refused"}}}
		}
		<-ctx.Done()
		return Report{Checks: []Check{{Name: "patroni1", Detail: "no answer in time"}}}
	})
	// Rounds after the deadline may start (a tick and the deadline can be
	// ready at once) and are cut short at once: they must not count either.
	if rounds < 2 || len(r.Checks) != 1 || r.Checks[0].Detail != "connection refused" {
		t.Errorf("after %d rounds the report says %+v, want the first round's connection refused", rounds, r.Checks)
	}
}

// A passing round ends the wait with its report.
func TestRunUntilTakesAPassingRound(t *testing.T) {
	r := runUntil(context.Background(), time.Second, 10*time.Millisecond, func(ctx context.Context) Report {
		return Report{OK: true, Checks: []Check{{Name: "etcd", OK: true}}}
	})
	if !r.OK {
		t.Errorf("report %+v, want OK", r)
	}
}
