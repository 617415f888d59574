package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Faults are the fault modes of a failover test.
const (
	FaultStop       = "stop"       // graceful stop (SIGTERM, Patroni releases the leader key)
	FaultKill       = "kill"       // SIGKILL: the leader key must expire
	FaultPause      = "pause"      // the container is frozen for a while
	FaultPartition  = "partition"  // the node is cut off from the cluster network
	FaultSwitchover = "switchover" // a planned switchover through Patroni's REST API
)

// Injector applies faults to a node's container and heals them; the engine
// side lives in pkg/provision.
type Injector interface {
	Inject(ctx context.Context, node, fault string) error
	Heal(ctx context.Context, node, fault string) error
	// InsideRecovery asks PostgreSQL inside the node's container (for a
	// partitioned node, whose ports are gone) whether it is in recovery; an
	// error means it does not answer.
	InsideRecovery(ctx context.Context, node string) (bool, error)
}

// FailoverOptions tune a failover test.
type FailoverOptions struct {
	Fault  string
	Target string // a node name, or "primary"
	// SwitchTo is the candidate of a switchover ("" lets Patroni choose).
	SwitchTo string
	// PauseFor is how long a paused or partitioned node stays cut off at
	// least; it must outlast the leader lease for a failover to happen.
	PauseFor time.Duration
	// Timeout bounds each wait (new primary, writes resuming, rejoin).
	Timeout time.Duration
	REST    RESTAuth
}

// FailoverReport holds the figures of one run.
type FailoverReport struct {
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

// RunFailover measures one fault: a healthy cluster is required first; a
// writer runs throughout; the fault is injected on the target; the new leader,
// the write gap and the timeline are measured; the target is healed and must
// rejoin as a streaming replica; every acknowledged write must be on the new
// primary; the cluster must verify healthy at the end.
func RunFailover(ctx context.Context, t Target, opts FailoverOptions) (FailoverReport, Report, error) {
	rep := FailoverReport{Fault: opts.Fault, Profile: t.Topo.Profile, SynchronousMode: t.Topo.SynchronousMode, Failures: []string{}}
	inj := t.Injector
	before := RunUntil(ctx, t, 15*time.Second)
	if !before.OK {
		return rep, before, errors.New("the cluster does not verify healthy; fix it before a failover test")
	}
	oldPrimary, oldTL := Primary(ctx, t.Topo)
	rep.OldPrimary, rep.OldTimeline = oldPrimary, oldTL
	rep.Target = opts.Target
	if rep.Target == "primary" || rep.Target == "" {
		rep.Target = oldPrimary
	}
	if _, ok := t.Topo.PatroniNode(rep.Target); !ok {
		return rep, before, fmt.Errorf("target %q is not a Patroni node of cluster %s", rep.Target, t.Topo.Name)
	}
	rep.TargetWasLeader = rep.Target == oldPrimary
	expectFailover := rep.TargetWasLeader

	// Watch the leader key from now on.
	etcd, err := NewEtcdClient(t.Topo.EtcdEndpointsHost())
	if err != nil {
		return rep, before, err
	}
	defer etcd.Close()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	leaderKey := t.Topo.KeyPrefix() + "leader"
	newLeader := make(chan leaderChange, 1)
	go watchLeader(wctx, etcd, leaderKey, oldPrimary, newLeader)

	// The writer.
	w := NewWriter(t.Topo, t.Creds.SuperuserPassword, "pgha_failover_"+secrets.Random(6))
	if err := w.Setup(ctx); err != nil {
		return rep, before, fmt.Errorf("preparing the write workload: %w", err)
	}
	defer w.Drop(context.WithoutCancel(ctx))
	writeCtx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.Run(writeCtx) }()
	defer func() { stopWriter(); <-writerDone }()
	if err := waitUntil(ctx, 10*time.Second, func() bool { return countAcked(w.Writes()) >= 20 }); err != nil {
		return rep, before, errors.New("the writer could not write to the primary before the fault")
	}

	// The fault.
	faultAt := time.Now()
	if opts.Fault == FaultSwitchover {
		err = Switchover(ctx, t.Topo, oldPrimary, opts.SwitchTo, opts.REST)
	} else {
		err = inj.Inject(ctx, rep.Target, opts.Fault)
	}
	if err != nil {
		return rep, before, fmt.Errorf("injecting %s on %s: %w", opts.Fault, rep.Target, err)
	}
	fail := func(format string, a ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, a...)) }

	// A partitioned old primary is watched from inside its container.
	isolatedStopped := make(chan time.Duration, 1)
	if opts.Fault == FaultPartition && rep.TargetWasLeader {
		go func() {
			err := waitUntil(ctx, opts.PauseFor+opts.Timeout, func() bool {
				rec, err := inj.InsideRecovery(ctx, rep.Target)
				return err != nil || rec
			})
			if err == nil {
				isolatedStopped <- time.Since(faultAt)
			}
			close(isolatedStopped)
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
	if err := waitUntil(ctx, opts.Timeout, func() bool {
		_, _, _, ok := Gap(w.Writes(), resumeAfter)
		return ok
	}); err != nil {
		fail("writes did not resume within %s", opts.Timeout)
	}

	// Pause and partition hold for their set time, then heal.
	if opts.Fault == FaultPause || opts.Fault == FaultPartition {
		if rest := opts.PauseFor - time.Since(faultAt); rest > 0 {
			select {
			case <-time.After(rest):
			case <-ctx.Done():
				return rep, before, ctx.Err()
			}
		}
	}
	if opts.Fault == FaultPartition && rep.TargetWasLeader {
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
	if opts.Fault != FaultSwitchover {
		if err := inj.Heal(ctx, rep.Target, opts.Fault); err != nil {
			fail("healing %s: %v", rep.Target, err)
		}
	}

	// The target (or, after a switchover, the old primary) streams from the
	// new primary. The leader key says who that is: right after it is
	// unpaused or reconnected, a deposed primary still reports itself as
	// primary until its next loop.
	rejoiner := rep.Target
	if opts.Fault == FaultSwitchover {
		rejoiner = oldPrimary
	}
	lastSeen := "not yet checked" // what the rejoiner looked like last, for the failure message
	err = waitUntil(ctx, opts.Timeout, func() bool {
		leader, err := leaderKeyValue(ctx, etcd, leaderKey)
		if err != nil || leader == "" {
			lastSeen = fmt.Sprintf("no leader key (%v)", err)
			return false
		}
		lst, err := GetPatroni(ctx, nodePort(t.Topo, leader))
		if err != nil || !lst.Leading() {
			lastSeen = fmt.Sprintf("leader %s not running as primary: %s", leader, describeState(lst, err))
			return false
		}
		rep.NewPrimary, rep.NewTimeline = leader, lst.Timeline
		if rejoiner == leader {
			return true // a replica target that came back and no failover
		}
		st, err := GetPatroni(ctx, nodePort(t.Topo, rejoiner))
		lastSeen = fmt.Sprintf("%s: %s; primary %s on timeline %d", rejoiner, describeState(st, err), leader, lst.Timeline)
		return err == nil && st.Streaming() && st.Timeline == lst.Timeline
	})
	rep.RejoinSec = time.Since(healAt).Seconds()
	if err != nil {
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
	if t.Topo.SynchronousMode == topology.SyncStrict && rep.LostAcked > 0 {
		fail("%d acknowledged writes lost in strict synchronous mode", rep.LostAcked)
	}

	after := RunUntil(ctx, t, 60*time.Second)
	rep.VerifiedAfter = after.OK
	if !after.OK {
		fail("the cluster does not verify healthy afterwards")
	}
	rep.OK = len(rep.Failures) == 0
	return rep, after, nil
}

// describeState says in a few words how a node's REST API answered.
func describeState(st PatroniState, err error) string {
	if err != nil {
		return "REST API: " + err.Error()
	}
	return fmt.Sprintf("role %s, state %s, replication %q, timeline %d", st.Role, st.State, st.ReplicationState, st.Timeline)
}

// RunUntil verifies the cluster, retrying until it passes or d has passed:
// right after a failover, replicas take a few loops to stream again.
func RunUntil(ctx context.Context, t Target, d time.Duration) Report {
	deadline := time.Now().Add(d)
	for {
		vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r := Run(vctx, t)
		cancel()
		if r.OK || time.Now().After(deadline) || ctx.Err() != nil {
			return r
		}
		time.Sleep(time.Second)
	}
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

// leaderKeyValue reads the member name in the leader key ("" when none holds it).
func leaderKeyValue(ctx context.Context, etcd *clientv3.Client, key string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := etcd.Get(cctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return "", err
	}
	return string(resp.Kvs[0].Value), nil
}

// Primary asks every node and returns the running primary and its timeline.
func Primary(ctx context.Context, topo topology.Cluster) (string, int) {
	for _, n := range topo.Patroni {
		if st, err := GetPatroni(ctx, n.RESTPort); err == nil && st.Leading() {
			return n.Name, st.Timeline
		}
	}
	return "", 0
}

func nodePort(topo topology.Cluster, node string) int {
	n, _ := topo.PatroniNode(node)
	return n.RESTPort
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

// waitUntil polls cond every 50 ms until it holds or d passes.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not within %s", d)
		case <-tick.C:
		}
	}
}

// Switchover asks the primary's REST API for a planned switchover to
// candidate ("" lets Patroni choose).
func Switchover(ctx context.Context, topo topology.Cluster, leader, candidate string, auth RESTAuth) error {
	body := map[string]any{"leader": leader}
	if candidate != "" {
		body["candidate"] = candidate
	}
	return postJSON(ctx, nodePort(topo, leader), "/switchover", auth, body)
}
