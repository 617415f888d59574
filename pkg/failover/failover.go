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
	"github.com/jackc/pgx/v5"
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
)

// Switchover is the scenario name of a planned switchover.
const Switchover = "switchover"

// Options tune a failover test.
type Options struct {
	// Fault is what happens to the target; nil for a planned switchover.
	Fault faults.Fault
	// Target is a node name, "primary", or "" for the member the fault acts on.
	Target string
	// SwitchTo is the candidate of a switchover ("" lets Patroni choose).
	SwitchTo string
	// PauseFor is how long a fault that must outlast the leader lease holds
	// (pause, partition, dcs-partition).
	PauseFor time.Duration
	// Hold, when set, is how long every fault that holds lasts; else each
	// fault's own hold (or PauseFor).
	Hold time.Duration
	// Timeout bounds each wait (new primary, writes resuming, rejoin).
	Timeout time.Duration
	// SynchronousMode and Profile are what is in force when they differ from
	// the topology's (a matrix run switches them through Patroni's dynamic
	// configuration).
	SynchronousMode string
	Profile         string
}

// Name is the scenario's name: the fault's, or "switchover".
func (o Options) Name() string {
	if o.Fault == nil {
		return Switchover
	}
	return o.Fault.Name()
}

// promises are the fault's, or a switchover's.
func (o Options) promises() faults.Promises {
	if o.Fault == nil {
		return faults.Promises{On: faults.OnPrimary, Failover: faults.FailoverExpected, Graceful: true}
	}
	return o.Fault.Promises()
}

// HoldOf is how long a fault with these promises holds.
func (o Options) HoldOf(p faults.Promises) time.Duration {
	switch {
	case !p.Holds:
		return 0
	case o.Hold > 0:
		return o.Hold
	case p.Hold > 0:
		return p.Hold
	}
	return o.PauseFor
}

// Env is the cluster under test: how to check it and how to fault it.
type Env struct {
	Check  verify.Target
	Faults faults.Target
}

// Report holds the figures of one run.
type Report struct {
	Fault           string `json:"fault"`
	Target          string `json:"target"`
	On              string `json:"on"`
	ExpectFailover  string `json:"expectedFailover"`
	TargetWasLeader bool   `json:"targetWasPrimary"`
	OldPrimary      string `json:"oldPrimary"`
	NewPrimary      string `json:"newPrimary"`
	OldTimeline     int    `json:"oldTimeline"`
	NewTimeline     int    `json:"newTimeline"`
	Profile         string `json:"profile"`
	SynchronousMode string `json:"synchronousMode"`
	// FaultAt is when the fault was injected; the other times are relative to it.
	FaultAt time.Time `json:"faultAt"`
	HoldSec float64   `json:"holdSeconds,omitempty"`
	// InPlaceSec is how long the injection took: a stop waits for the
	// shutdown, a network fault for its helper to put the rules in place.
	InPlaceSec     float64 `json:"inPlaceSeconds"`
	HealSec        float64 `json:"healedAtSeconds"`         // fault until the heal began
	NewLeaderSec   float64 `json:"newLeaderSeconds"`        // fault until a new leader key in etcd
	UnavailableSec float64 `json:"writeUnavailableSeconds"` // last ack before the fault until the first after
	// GapFromSec and GapToSec place that gap relative to the fault.
	GapFromSec float64 `json:"gapFromSeconds"`
	GapToSec   float64 `json:"gapToSeconds"`
	RejoinSec  float64 `json:"rejoinSeconds"` // heal until every node streams from the primary again
	// Healed: after the heal a primary ran and every other node streamed
	// from it on its timeline.
	Healed bool `json:"healed"`
	// IsolatedStoppedWritesSec: for a partition, when the cut-off old primary
	// stopped accepting writes (demoted or down), seen from inside it; -1 if never seen.
	IsolatedStoppedWritesSec float64 `json:"isolatedStoppedWritesSeconds,omitempty"`
	Audit                    Audit   `json:"writes"`
	LostAcked                int     `json:"lostAckedWrites"`
	// SplitBrains are the spans when two nodes took writes at once.
	SplitBrains []SplitBrain `json:"splitBrains"`
	Probes      int          `json:"probes"`
	// Archive: for a fault that disturbs WAL archiving, whether it caught up.
	Archive       *ArchiveReport `json:"archive,omitempty"`
	VerifiedAfter bool           `json:"verifiedAfter"`
	Guard         GuardReport    `json:"guard"`
	// Router: the same run seen through the cluster's router, when it has one.
	Router   *RouterReport `json:"router,omitempty"`
	Failures []string      `json:"failures"`
	OK       bool          `json:"ok"`
	// Timeline is what the picture shows; not part of the JSON.
	Timeline *Timeline `json:"-"`
}

// Timeline is everything seen during one run, for the report's picture.
type Timeline struct {
	Cluster string
	Nodes   []string
	Start   time.Time
	FaultAt time.Time
	// InPlaceAt is when the injection returned.
	InPlaceAt time.Time
	HealAt    time.Time
	End       time.Time
	Probes    []Probe
	Leader    []LeaderChange
	Writes    []Write
	GapFrom   time.Time
	GapTo     time.Time
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
// throughout, and a split-brain detector probes every node; the fault is
// injected on its member; the new leader, the write gap and the timeline are
// measured; the fault holds for its time and is healed, and every node must
// stream from the primary again; every acknowledged write must be on the
// primary, no two nodes may have taken writes at once, and the cluster must
// verify healthy at the end. An injected fault is healed on every way out,
// an interrupted run included.
func Run(ctx context.Context, env Env, opts Options) (Report, verify.Report, error) {
	t := env.Check
	if opts.SynchronousMode != "" {
		t.Topo.SynchronousMode = opts.SynchronousMode
	}
	topo := t.Topo
	promises := opts.promises()
	rep := Report{Fault: opts.Name(), On: string(promises.On), Profile: topo.Profile, SynchronousMode: topo.SynchronousMode,
		Failures: []string{}, SplitBrains: []SplitBrain{}}
	if opts.Profile != "" {
		rep.Profile = opts.Profile
	}
	before := verify.RunUntil(ctx, t, 15*time.Second)
	if !before.OK {
		return rep, before, errors.New("the cluster does not verify healthy; fix it before a failover test")
	}
	oldPrimary, oldTL := t.Primary(ctx)
	rep.OldPrimary, rep.OldTimeline = oldPrimary, oldTL
	target, err := resolveTarget(ctx, t.Access, promises.On, opts.Target, oldPrimary)
	if err != nil {
		return rep, before, err
	}
	rep.Target = target
	rep.TargetWasLeader = target == oldPrimary
	expect := promises.Failover
	if promises.On.OnPatroni() && !rep.TargetWasLeader {
		expect = faults.NoFailover
	}
	rep.ExpectFailover = string(expect)
	rep.HoldSec = opts.HoldOf(promises).Seconds()

	// Follow the leader key from now on.
	etcd, err := t.Etcd()
	if err != nil {
		return rep, before, err
	}
	defer etcd.Close()
	rctx, stopRecording := context.WithCancel(ctx)
	defer stopRecording()
	leaderKey := topo.KeyPrefix() + "leader"
	leader := recordLeader(rctx, etcd, leaderKey)

	// The split-brain detector.
	det := NewDetector(t.Access, env.Faults, "pgha_probe_"+secrets.Random(6))
	if err := det.Setup(ctx); err != nil {
		return rep, before, fmt.Errorf("preparing the split-brain probes: %w", err)
	}
	defer func() {
		dctx, cancel := poll.Detached(ctx, 10*time.Second)
		defer cancel()
		_ = det.Drop(dctx)
	}()
	detCtx, stopDetector := context.WithCancel(ctx)
	detDone := make(chan struct{})
	go func() { defer close(detDone); det.Run(detCtx) }()
	defer func() { stopDetector(); <-detDone }()

	// The writer.
	start := time.Now()
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
	// A second writer through the router, its replica port probed, and a
	// session held on the primary through it.
	var rt *routerRun
	if topo.Router {
		if rt, err = startRouter(ctx, t.Access, w.table+"_router", rep.TargetWasLeader && expect == faults.FailoverExpected); err != nil {
			return rep, before, err
		}
		defer rt.drop(ctx)
		defer rt.close()
		if err := rt.waitAcked(ctx); err != nil {
			return rep, before, fmt.Errorf("the writer could not write through the router before the fault: %w", err)
		}
	}

	// WAL archiving before the fault, for a fault that disturbs it.
	var archBefore archiveState
	var archConn *pgx.Conn
	if promises.ArchivesWAL {
		if archConn, err = t.Connect(ctx, oldPrimary); err != nil {
			return rep, before, fmt.Errorf("connecting to %s: %v", oldPrimary, clients.PGErr(err))
		}
		defer closeConn(ctx, archConn)
		if archBefore, err = readArchiveState(ctx, archConn); err != nil {
			return rep, before, fmt.Errorf("reading pg_stat_archiver on %s: %v", oldPrimary, clients.PGErr(err))
		}
	}

	// The fault. Whatever happens from here on, it is healed before Run returns.
	faultAt := time.Now()
	rep.FaultAt = faultAt
	var injected *faults.Injected
	if opts.Fault == nil {
		err = t.Switchover(ctx, oldPrimary, opts.SwitchTo)
	} else {
		injected, err = faults.Inject(ctx, opts.Fault, env.Faults, target)
	}
	if err != nil {
		return rep, before, err
	}
	if injected != nil {
		defer injected.Close()
	}
	inPlaceAt := time.Now()
	rep.InPlaceSec = inPlaceAt.Sub(faultAt).Seconds()
	if rt != nil {
		rt.watchHeld(ctx, faultAt, opts.Timeout)
	}
	fail := func(format string, a ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, a...)) }

	// A cut-off node is probed, and a cut-off old primary watched, from
	// inside its container.
	isolatedStopped := make(chan time.Duration, 1)
	if promises.CutsPorts && target != "" {
		det.Inside(target, true)
	}
	if promises.CutsPorts && rep.TargetWasLeader {
		go func() {
			defer close(isolatedStopped)
			err := poll.For(ctx, opts.PauseFor+opts.Timeout, 50*time.Millisecond, func(context.Context) (bool, error) {
				rec, err := insideRecovery(ctx, env.Faults, target)
				return err != nil || rec, nil
			})
			if err == nil {
				isolatedStopped <- time.Since(faultAt)
			}
		}()
	}

	// A fault that must fail over: a new leader key, and writes resuming on
	// the new primary. A dying primary may still acknowledge a write or two
	// just after the fault, so only writes sent once the new leader exists
	// count as resumed.
	resumeAfter := faultAt
	if expect == faults.FailoverExpected {
		err := poll.For(ctx, opts.Timeout, 20*time.Millisecond, func(context.Context) (bool, error) {
			_, ok := leader.newLeader(faultAt, oldPrimary, false)
			return ok, nil
		})
		if ctx.Err() != nil {
			return rep, before, ctx.Err()
		}
		if ch, ok := leader.newLeader(faultAt, oldPrimary, false); err == nil && ok {
			rep.NewLeaderSec = ch.At.Sub(faultAt).Seconds()
			rep.NewPrimary = ch.Holder
			resumeAfter = ch.At
		} else {
			fail("no new leader key within %s", opts.Timeout)
		}
	}
	if expect == faults.FailoverExpected || !promises.Holds {
		if err := waitResumed(ctx, w, resumeAfter, opts.Timeout); err != nil {
			if ctx.Err() != nil {
				return rep, before, ctx.Err()
			}
			fail("writes did not resume within %s", opts.Timeout)
		}
	}

	// A fault that holds lasts its time, then heals. One that disturbs WAL
	// archiving closes segments meanwhile, so that there is WAL to archive.
	if hold := opts.HoldOf(promises); hold > 0 {
		for rest := hold - time.Since(faultAt); rest > 0; rest = hold - time.Since(faultAt) {
			step := rest
			if archConn != nil {
				step = min(rest, 3*time.Second)
			}
			select {
			case <-time.After(step):
			case <-ctx.Done():
				return rep, before, ctx.Err()
			}
			if archConn != nil && hold-time.Since(faultAt) > 0 {
				sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, _ = switchWAL(sctx, archConn)
				cancel()
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
				fail("the isolated old primary %s never stopped accepting writes", target)
			}
		case <-time.After(opts.Timeout):
			rep.IsolatedStoppedWritesSec = -1
			fail("the isolated old primary %s still accepted writes after %s", target, time.Since(faultAt).Round(time.Second))
		}
	}
	var archAtHeal archiveState
	if archConn != nil {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		archAtHeal, _ = readArchiveState(sctx, archConn)
		cancel()
	}
	healAt := time.Now()
	rep.HealSec = healAt.Sub(faultAt).Seconds()
	if injected != nil {
		if err := injected.Heal(ctx); err != nil {
			fail("%v", err)
		}
	}
	if promises.CutsPorts && target != "" {
		det.Inside(target, false)
	}

	// The cluster is whole again: the leader key's holder runs as the
	// primary and every other node streams from it on its timeline. The
	// leader key says who the primary is: right after it is unpaused or
	// reconnected, a deposed primary still reports itself as primary until
	// its next loop.
	var lastSeen poll.Seen[string] // what was wrong last, for the failure message
	lastSeen.Note(ctx, "not yet checked")
	err = poll.For(ctx, opts.Timeout, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		seen := func(format string, a ...any) { lastSeen.Note(ctx, fmt.Sprintf(format, a...)) }
		leaderName, err := clients.KeyValue(ctx, etcd, leaderKey)
		if err != nil || leaderName == "" {
			seen("no leader key (%v)", err)
			return false, nil
		}
		lst, err := t.Patroni(ctx, leaderName)
		if err != nil || !lst.Leading() {
			seen("leader %s not running as primary: %s", leaderName, clients.Describe(lst, err))
			return false, nil
		}
		rep.NewPrimary, rep.NewTimeline = leaderName, lst.Timeline
		for _, n := range topo.Patroni {
			if n.Name == leaderName {
				continue
			}
			st, err := t.Patroni(ctx, n.Name)
			if err != nil || !st.Streaming() || st.Timeline != lst.Timeline {
				seen("%s: %s; primary %s on timeline %d", n.Name, clients.Describe(st, err), leaderName, lst.Timeline)
				return false, nil
			}
		}
		return true, nil
	})
	rep.RejoinSec = time.Since(healAt).Seconds()
	rep.Healed = err == nil
	if err != nil {
		if ctx.Err() != nil {
			return rep, before, ctx.Err()
		}
		fail("the cluster was not whole again within %s of the heal (last seen: %s)", opts.Timeout, lastSeen.Last())
	}
	switch {
	case expect == faults.FailoverExpected && rep.NewPrimary == oldPrimary:
		fail("no failover: %s is still the primary", oldPrimary)
	case expect == faults.NoFailover && rep.Healed && rep.NewPrimary != oldPrimary:
		fail("an unexpected failover from %s to %s", oldPrimary, rep.NewPrimary)
	}
	if expect == faults.FailoverMaybe {
		if ch, ok := leader.newLeader(faultAt, oldPrimary, true); ok {
			rep.NewLeaderSec = ch.At.Sub(faultAt).Seconds()
			resumeAfter = ch.At
		}
	}
	if err := waitResumed(ctx, w, resumeAfter, opts.Timeout); err != nil {
		if ctx.Err() != nil {
			return rep, before, ctx.Err()
		}
		fail("writes did not resume within %s of the heal", opts.Timeout)
	}

	if rt != nil {
		if err := waitResumed(ctx, rt.w, resumeAfter, opts.Timeout); err != nil {
			if ctx.Err() != nil {
				return rep, before, ctx.Err()
			}
			fail("writes through the router did not resume within %s of the heal", opts.Timeout)
		}
	}

	// Stop writing, measure the gap over the whole run, then audit.
	time.Sleep(200 * time.Millisecond) // a few acknowledged writes on the primary
	stopWriter()
	<-writerDone
	gap, from, to, _ := Gap(w.Writes(), faultAt)
	rep.UnavailableSec = gap.Seconds()
	rep.GapFromSec, rep.GapToSec = from.Sub(faultAt).Seconds(), to.Sub(faultAt).Seconds()
	if rt != nil {
		rr := rt.finish(ctx, faultAt, rep.UnavailableSec)
		rep.Router = &rr
		if rr.ReadOnlyFromPrimary > 0 {
			fail("the router's replica port answered %d times from a primary (%v)", rr.ReadOnlyFromPrimary, rr.ReadOnlyPrimaries)
		}
		if c := rr.HeldSessionClosedSec; c != nil && *c < 0 {
			fail("a session held on %s through the router was still open %s after the fault", rr.HeldSessionNode, opts.Timeout)
		}
		if topo.SynchronousMode == topology.SyncStrict && rr.LostAcked > 0 {
			fail("%d writes acknowledged through the router lost in strict synchronous mode", rr.LostAcked)
		}
	}
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

	// Archiving caught up: every segment since before the fault is in the repository.
	if promises.ArchivesWAL && rep.NewPrimary != "" {
		arch, err := checkArchive(ctx, t.Access, env.Faults, rep.NewPrimary, archBefore, archAtHeal, healAt, opts.Timeout)
		rep.Archive = &arch
		switch {
		case err != nil:
			fail("WAL archiving after the heal: %v", err)
		case len(arch.Missing) > 0:
			fail("%d WAL segments of %s … %s missing from the repository: %s", len(arch.Missing), arch.From, arch.To, strings.Join(arch.Missing, ", "))
		}
	}

	// No two nodes took writes at once.
	stopDetector()
	<-detDone
	probes := det.Probes()
	rep.Probes = len(probes)
	rep.SplitBrains = SplitBrains(probes, faultAt)
	for _, sb := range rep.SplitBrains {
		fail("split brain: %s", sb)
	}

	after := verify.RunUntil(ctx, t, 60*time.Second)
	rep.VerifiedAfter = after.OK
	if !after.OK {
		fail("the cluster does not verify healthy afterwards")
	}
	rep.OK = len(rep.Failures) == 0
	rep.Timeline = &Timeline{Cluster: topo.Name, Nodes: topo.PatroniNames(), Start: start, FaultAt: faultAt, InPlaceAt: inPlaceAt, HealAt: healAt, End: time.Now(),
		Probes: probes, Leader: leader.Changes(), Writes: w.Writes(), GapFrom: from, GapTo: to}
	return rep, after, nil
}

// waitResumed waits until a write sent after t is acknowledged.
func waitResumed(ctx context.Context, w *Writer, t time.Time, timeout time.Duration) error {
	return poll.For(ctx, timeout, 50*time.Millisecond, func(context.Context) (bool, error) {
		_, _, _, ok := Gap(w.Writes(), t)
		return ok, nil
	})
}

// resolveTarget picks the member a fault acts on: the primary or the named
// node, a streaming replica (the synchronous standby first), the etcd
// leader; "" for the store and the whole cluster.
func resolveTarget(ctx context.Context, acc clients.Access, on faults.Member, named, primary string) (string, error) {
	topo := acc.Topo
	switch on {
	case faults.OnPrimary, faults.OnReplica:
		if named != "" && named != "primary" {
			if _, ok := topo.PatroniNode(named); !ok {
				return "", fmt.Errorf("target %q is not a Patroni node of cluster %s", named, topo.Name)
			}
			return named, nil
		}
		if on == faults.OnPrimary || named == "primary" {
			return primary, nil
		}
		view, err := acc.Cluster(ctx)
		if err != nil {
			return "", err
		}
		for _, role := range []string{"sync_standby", "replica"} {
			for _, m := range view.Members {
				if m.Role == role && m.State == "streaming" {
					return m.Name, nil
				}
			}
		}
		return "", fmt.Errorf("no streaming replica in cluster %s", topo.Name)
	case faults.OnEtcdLeader, faults.OnEtcdMajority:
		cli, err := acc.Etcd()
		if err != nil {
			return "", err
		}
		defer cli.Close()
		for _, st := range clients.EtcdStatus(ctx, cli) {
			if st.Err != nil || !st.IsLeader {
				continue
			}
			for _, e := range topo.Etcd {
				if acc.EtcdEndpoint(e) == st.Endpoint {
					return e.Name, nil
				}
			}
		}
		return "", fmt.Errorf("no etcd member of cluster %s says it leads", topo.Name)
	}
	return "", nil
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
