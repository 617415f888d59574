// Package failover measures failovers: it verifies the cluster, runs a
// writer, injects a fault from pkg/faults (or asks for a planned
// switchover), measures the new leader, the write gap and the rejoin,
// audits every acknowledged write, and verifies the cluster again. The fault
// is healed on every exit path.
package failover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/faults"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/pgha/pgha/pkg/verify"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Switchover is the scenario name of a planned switchover.
const Switchover = "switchover"

// Options tune a failover test.
type Options struct {
	// Fault is what happens to the target; nil for a planned switchover.
	Fault  faults.Fault
	Target string // a node name, or "primary"
	// SwitchTo is the candidate of a switchover ("" lets Patroni choose).
	SwitchTo string
	// PauseFor is how long a fault that holds (pause, partition) lasts at
	// least; it must outlast the leader lease for a failover to happen.
	PauseFor time.Duration
	// Timeout bounds each wait (new primary, writes resuming, rejoin).
	Timeout time.Duration
}

// Name is the scenario's name: the fault's, or "switchover".
func (o Options) Name() string {
	if o.Fault == nil {
		return Switchover
	}
	return o.Fault.Name()
}

// Env is the cluster under test: how to check it and how to fault it.
type Env struct {
	Check  verify.Target
	Faults faults.Target
}

// Report holds the figures of one run.
type Report struct {
	Fault           string  `json:"fault"`
	Target          string  `json:"target"`
	TargetWasLeader bool    `json:"targetWasPrimary"`
	OldPrimary      string  `json:"oldPrimary"`
	NewPrimary      string  `json:"newPrimary"`
	OldTimeline     int     `json:"oldTimeline"`
	NewTimeline     int     `json:"newTimeline"`
	Profile         string  `json:"profile"`
	SynchronousMode string  `json:"synchronousMode"`
	NewLeaderSec    float64 `json:"newLeaderSeconds"`        // fault until a new leader key in etcd
	UnavailableSec  float64 `json:"writeUnavailableSeconds"` // last ack before the fault until the first after
	// GapFromSec and GapToSec place that gap relative to the fault.
	GapFromSec float64 `json:"gapFromSeconds"`
	GapToSec   float64 `json:"gapToSeconds"`
	RejoinSec  float64 `json:"rejoinSeconds"` // heal until the target streams again
	// IsolatedStoppedWritesSec: for a partition, when the cut-off old primary
	// stopped accepting writes (demoted or down), seen from inside it; -1 if never seen.
	IsolatedStoppedWritesSec float64     `json:"isolatedStoppedWritesSeconds,omitempty"`
	Audit                    Audit       `json:"writes"`
	LostAcked                int         `json:"lostAckedWrites"`
	VerifiedAfter            bool        `json:"verifiedAfter"`
	Guard                    GuardReport `json:"guard"`
	Failures                 []string    `json:"failures"`
	OK                       bool        `json:"ok"`
}

// GuardReport says whether the cluster's fencing guard watched during the
// test and what it decided about the target.
type GuardReport struct {
	Enabled bool `json:"enabled"` // the topology runs a guard
	// Active: its container ran and watched the engine's events before the fault.
	Active bool   `json:"active"`
	State  string `json:"state,omitempty"`
	// Decision is its decision on the target's die or pause event, if any.
	Decision *guard.Record `json:"decision,omitempty"`
}

// Run measures one fault: a healthy cluster is required first; a writer runs
// throughout; the fault is injected on the target; the new leader, the write
// gap and the timeline are measured; the target is healed and must rejoin as
// a streaming replica; every acknowledged write must be on the new primary;
// the cluster must verify healthy at the end. An injected fault is healed on
// every way out, an interrupted run included.
func Run(ctx context.Context, env Env, opts Options) (Report, verify.Report, error) {
	t, topo := env.Check, env.Check.Topo
	rep := Report{Fault: opts.Name(), Profile: topo.Profile, SynchronousMode: topo.SynchronousMode, Failures: []string{}}
	before := verify.RunUntil(ctx, t, 15*time.Second)
	if !before.OK {
		return rep, before, errors.New("the cluster does not verify healthy; fix it before a failover test")
	}
	oldPrimary, oldTL := t.Primary(ctx)
	rep.OldPrimary, rep.OldTimeline = oldPrimary, oldTL
	rep.Target = opts.Target
	if rep.Target == "primary" || rep.Target == "" {
		rep.Target = oldPrimary
	}
	if _, ok := topo.PatroniNode(rep.Target); !ok {
		return rep, before, fmt.Errorf("target %q is not a Patroni node of cluster %s", rep.Target, topo.Name)
	}
	rep.TargetWasLeader = rep.Target == oldPrimary
	expectFailover := rep.TargetWasLeader

	// Watch the leader key from now on.
	etcd, err := t.Etcd()
	if err != nil {
		return rep, before, err
	}
	defer etcd.Close()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	leaderKey := topo.KeyPrefix() + "leader"
	newLeader := make(chan leaderChange, 1)
	go watchLeader(wctx, etcd, leaderKey, oldPrimary, newLeader)

	// The writer.
	w := NewWriter(t.Access, "pgha_failover_"+secrets.Random(6))
	if err := w.Setup(ctx); err != nil {
		return rep, before, fmt.Errorf("preparing the write workload: %w", err)
	}
	defer func() {
		dctx, cancel := poll.Detached(ctx, 10*time.Second)
		defer cancel()
		_ = w.Drop(dctx)
	}()
	writeCtx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.Run(writeCtx) }()
	defer func() { stopWriter(); <-writerDone }()
	if err := poll.For(ctx, 10*time.Second, 50*time.Millisecond, func(context.Context) (bool, error) {
		return countAcked(w.Writes()) >= 20, nil
	}); err != nil {
		return rep, before, fmt.Errorf("the writer could not write to the primary before the fault: %w", err)
	}

	// The fault. Whatever happens from here on, it is healed before Run returns.
	faultAt := time.Now()
	var injected *faults.Injected
	if opts.Fault == nil {
		err = t.Switchover(ctx, oldPrimary, opts.SwitchTo)
	} else {
		injected, err = faults.Inject(ctx, opts.Fault, env.Faults, rep.Target)
	}
	if err != nil {
		return rep, before, err
	}
	if injected != nil {
		defer injected.Close()
	}
	fail := func(format string, a ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, a...)) }
	promises := faults.Promises{}
	if opts.Fault != nil {
		promises = opts.Fault.Promises()
	}

	// A cut-off old primary is watched from inside its container.
	isolatedStopped := make(chan time.Duration, 1)
	if promises.CutsPorts && rep.TargetWasLeader {
		go func() {
			defer close(isolatedStopped)
			err := poll.For(ctx, opts.PauseFor+opts.Timeout, 50*time.Millisecond, func(context.Context) (bool, error) {
				rec, err := insideRecovery(ctx, env.Faults, rep.Target)
				return err != nil || rec, nil
			})
			if err == nil {
				isolatedStopped <- time.Since(faultAt)
			}
		}()
	}

	if expectFailover {
		select {
		case ch := <-newLeader:
			rep.NewLeaderSec = ch.at.Sub(faultAt).Seconds()
			rep.NewPrimary = ch.member
		case <-time.After(opts.Timeout):
			fail("no new leader key within %s", opts.Timeout)
		case <-ctx.Done():
			return rep, before, ctx.Err()
		}
	}
	// Writes resume on the new primary (or, when the target was a replica,
	// never stopped). A dying primary may still acknowledge a write or two
	// just after the fault, so after a failover only writes sent once the new
	// leader exists count as resumed.
	resumeAfter := faultAt
	if rep.NewLeaderSec > 0 {
		resumeAfter = faultAt.Add(time.Duration(rep.NewLeaderSec * float64(time.Second)))
	}
	if err := poll.For(ctx, opts.Timeout, 50*time.Millisecond, func(context.Context) (bool, error) {
		_, _, _, ok := Gap(w.Writes(), resumeAfter)
		return ok, nil
	}); err != nil {
		if ctx.Err() != nil {
			return rep, before, ctx.Err()
		}
		fail("writes did not resume within %s", opts.Timeout)
	}

	// A fault that holds lasts its set time, then heals.
	if promises.Holds {
		if rest := opts.PauseFor - time.Since(faultAt); rest > 0 {
			select {
			case <-time.After(rest):
			case <-ctx.Done():
				return rep, before, ctx.Err()
			}
		}
	}
	if promises.CutsPorts && rep.TargetWasLeader {
		select {
		case d, ok := <-isolatedStopped:
			if ok {
				rep.IsolatedStoppedWritesSec = d.Seconds()
			} else {
				rep.IsolatedStoppedWritesSec = -1
				fail("the isolated old primary %s never stopped accepting writes", rep.Target)
			}
		case <-time.After(opts.Timeout):
			rep.IsolatedStoppedWritesSec = -1
			fail("the isolated old primary %s still accepted writes after %s", rep.Target, time.Since(faultAt).Round(time.Second))
		}
	}
	healAt := time.Now()
	if injected != nil {
		if err := injected.Heal(ctx); err != nil {
			fail("%v", err)
		}
	}

	// The target (or, after a switchover, the old primary) streams from the
	// new primary. The leader key says who that is: right after it is
	// unpaused or reconnected, a deposed primary still reports itself as
	// primary until its next loop.
	rejoiner := rep.Target
	if opts.Fault == nil {
		rejoiner = oldPrimary
	}
	lastSeen := "not yet checked" // what the rejoiner looked like last, for the failure message
	err = poll.For(ctx, opts.Timeout, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		leader, err := clients.KeyValue(ctx, etcd, leaderKey)
		if err != nil || leader == "" {
			lastSeen = fmt.Sprintf("no leader key (%v)", err)
			return false, nil
		}
		lst, err := t.Patroni(ctx, leader)
		if err != nil || !lst.Leading() {
			lastSeen = fmt.Sprintf("leader %s not running as primary: %s", leader, clients.Describe(lst, err))
			return false, nil
		}
		rep.NewPrimary, rep.NewTimeline = leader, lst.Timeline
		if rejoiner == leader {
			return true, nil // a replica target that came back and no failover
		}
		st, err := t.Patroni(ctx, rejoiner)
		lastSeen = fmt.Sprintf("%s: %s; primary %s on timeline %d", rejoiner, clients.Describe(st, err), leader, lst.Timeline)
		return err == nil && st.Streaming() && st.Timeline == lst.Timeline, nil
	})
	rep.RejoinSec = time.Since(healAt).Seconds()
	if err != nil {
		if ctx.Err() != nil {
			return rep, before, ctx.Err()
		}
		fail("%s did not rejoin as a streaming replica of %s within %s (last seen: %s)", rejoiner, rep.NewPrimary, opts.Timeout, lastSeen)
	}
	if expectFailover && rep.NewPrimary == oldPrimary {
		fail("no failover: %s is still the primary", oldPrimary)
	}
	if !expectFailover && rep.NewPrimary != oldPrimary {
		fail("an unexpected failover from %s to %s", oldPrimary, rep.NewPrimary)
	}

	// Stop writing, measure the gap over the whole run, then audit.
	time.Sleep(200 * time.Millisecond) // a few acknowledged writes on the new primary
	stopWriter()
	<-writerDone
	gap, from, to, _ := Gap(w.Writes(), faultAt)
	rep.UnavailableSec = gap.Seconds()
	rep.GapFromSec, rep.GapToSec = from.Sub(faultAt).Seconds(), to.Sub(faultAt).Seconds()
	audit, err := w.AuditWrites(ctx)
	if err != nil {
		fail("auditing the writes: %v", err)
	}
	rep.Audit = audit
	rep.LostAcked = len(audit.Lost)
	if len(audit.Phantom) > 0 {
		fail("%d ids on the primary that the writer never sent", len(audit.Phantom))
	}
	if topo.SynchronousMode == topology.SyncStrict && rep.LostAcked > 0 {
		fail("%d acknowledged writes lost in strict synchronous mode", rep.LostAcked)
	}

	after := verify.RunUntil(ctx, t, 60*time.Second)
	rep.VerifiedAfter = after.OK
	if !after.OK {
		fail("the cluster does not verify healthy afterwards")
	}
	rep.OK = len(rep.Failures) == 0
	return rep, after, nil
}

type leaderChange struct {
	member string
	at     time.Time
}

// watchLeader reports the first time the leader key names a member other than old.
func watchLeader(ctx context.Context, etcd *clientv3.Client, key, old string, out chan<- leaderChange) {
	for ctx.Err() == nil {
		for resp := range etcd.Watch(ctx, key) {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypePut && string(ev.Kv.Value) != old {
					out <- leaderChange{member: string(ev.Kv.Value), at: time.Now()}
					return
				}
			}
		}
	}
}

// insideRecovery runs psql inside the node's container over its Unix socket
// (a cut-off node has no published ports): whether PostgreSQL is in
// recovery; an error means it does not answer.
func insideRecovery(ctx context.Context, t faults.Target, node string) (bool, error) {
	eng, name := t.Backend.Where(t.Topo, node)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, err := eng.Output(ctx, name, engine.ExecOptions{}, "psql", "-XAtq", "-c", "SET statement_timeout = '1s'", "-c", "SELECT pg_is_in_recovery()")
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(out) {
	case "t":
		return true, nil
	case "f":
		return false, nil
	}
	return false, fmt.Errorf("psql in %s: %s", node, strings.TrimSpace(out))
}

func countAcked(ws []Write) int {
	n := 0
	for _, w := range ws {
		if w.Outcome == Acked {
			n++
		}
	}
	return n
}
