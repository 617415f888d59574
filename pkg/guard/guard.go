package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/pgha/pgha/pkg/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Engine is the part of the Docker API the guard uses: the event stream and
// the container list, both filtered on the cluster's label. Its API proxy
// allows nothing else; in particular no inspect, whose answer carries every
// container's environment.
type Engine interface {
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
}

// Guard watches one cluster.
type Guard struct {
	Engine Engine
	Etcd   clientv3.KV
	Config Config
	// Log receives one JSON Record per line.
	Log io.Writer
	mu  sync.Mutex
}

// Reconnect backoff for a dropped event stream.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 5 * time.Second
	// attempts at a decision when etcd or the engine does not answer; past
	// a few seconds the lease is the faster way anyway.
	attempts = 5
	// callTimeout bounds every etcd and engine call of a decision.
	callTimeout = 2 * time.Second
	// confirmEvery paces asking the container list again after a die
	// event, up to confirmWait: Docker 20.10 emits die before its post-exit cleanup
	// and updates the list only after it (a few hundred ms here, seconds
	// under load).
	confirmEvery = 20 * time.Millisecond
)

// confirmWait bounds how long one attempt at a die event waits for the
// container list to report the container stopped (a variable for tests).
var confirmWait = callTimeout

// dieTrustWindow: a die event is the engine's own word that the process
// ended, and it is enough on its own when the leader key was read within
// this time of the event. A member started again after its die cannot have
// rewritten the key by then — Patroni takes more than a second to start and
// reach etcd (measured here: 0.4 s for `patroni --version` alone, ~1.4 s to
// its first DCS write) — and a rewrite after the read changes the key's
// revision, which fails the delete's comparison. Later than this, the
// decision waits for the container list to agree, as it did before: the
// list lags the event by the engine's post-exit cleanup (190 ms median
// here), which was most of the guard's reaction time. A variable for tests.
var dieTrustWindow = 300 * time.Millisecond

// Run watches until ctx ends. A dropped event stream is reopened with
// backoff; every (re)connection reconciles the current state first.
func (g *Guard) Run(ctx context.Context) error {
	if err := g.Config.Validate(); err != nil {
		return err
	}
	g.log(Record{Event: "start", Reason: fmt.Sprintf("guarding cluster %s: leader key %s, Patroni nodes %s",
		g.Config.Cluster, g.leaderKey(), strings.Join(g.Config.memberNames(), ", "))})
	backoff := minBackoff
	for {
		began := time.Now()
		err := g.watch(ctx)
		if ctx.Err() != nil {
			g.log(Record{Event: "stop", Reason: "asked to stop"})
			return nil
		}
		if time.Since(began) > time.Minute {
			backoff = minBackoff
		}
		g.log(Record{Event: "disconnected", Reason: fmt.Sprintf("event stream ended (%v); reconnecting in %s, Patroni's lease applies meanwhile", err, backoff)})
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// eventFilter selects the die and pause events of the cluster's Patroni containers.
func (g *Guard) eventFilter() filters.Args {
	f := g.patroniFilter()
	f.Add("type", string(events.ContainerEventType))
	f.Add("event", string(events.ActionDie))
	f.Add("event", string(events.ActionPause))
	return f
}

// patroniFilter selects the cluster's Patroni containers by their labels
// (the proxy insists on the cluster's).
func (g *Guard) patroniFilter() filters.Args {
	return filters.NewArgs(
		filters.Arg("label", topology.LabelCluster+"="+g.Config.Cluster),
		filters.Arg("label", topology.LabelRole+"="+topology.RolePatroni),
	)
}

// event is what an engine event says about a container, from its own
// attributes.
type event struct {
	action string
	id     string
	name   string
	at     time.Time
	// exitCode is the die event's, -1 when absent.
	exitCode int
}

func eventOf(m events.Message) event {
	ev := event{action: string(m.Action), id: m.Actor.ID, name: m.Actor.Attributes["name"], at: time.Unix(0, m.TimeNano), exitCode: -1}
	if code, err := strconv.Atoi(m.Actor.Attributes["exitCode"]); err == nil {
		ev.exitCode = code
	}
	return ev
}

// watch subscribes to the engine's events, reconciles, then handles events
// until the stream ends.
func (g *Guard) watch(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Events since the subscription only: what happened while disconnected
	// is covered by the reconciliation, against the state of now.
	since := time.Now()
	msgs, errs := g.Engine.Events(ctx, events.ListOptions{Since: timestamp(since), Filters: g.eventFilter()})
	select {
	case err := <-errs:
		return err
	default:
	}
	g.log(Record{Event: "connected", Reason: "watching the engine's die and pause events of the cluster's Patroni containers"})
	g.reconcile(ctx)
	for {
		select {
		case err, ok := <-errs:
			if !ok || err == nil {
				err = io.EOF
			}
			return err
		case m := <-msgs:
			ev := eventOf(m)
			if ev.at.Before(since) {
				g.log(Record{Event: ev.action, Container: ev.name, Reason: "an event from before the connection: stale, ignored"})
				continue
			}
			g.decide(ctx, ev)
		}
	}
}

// reconcile looks at the state of now: when the leader key names a member
// whose container the engine reports dead, it acts as on a die event.
func (g *Guard) reconcile(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	list, err := g.Engine.ContainerList(lctx, container.ListOptions{All: true, Filters: g.patroniFilter()})
	cancel()
	if err != nil {
		g.log(Record{Event: EventReconcile, Action: ActionNone, Outcome: OutcomeFailed, Reason: "listing the cluster's containers: " + err.Error()})
		return
	}
	leader, err := g.readLeader(ctx)
	if err != nil {
		g.log(Record{Event: EventReconcile, Action: ActionNone, Outcome: OutcomeFailed, Reason: "reading the leader key: " + err.Error()})
		return
	}
	if !leader.Exists {
		g.log(Record{Event: EventReconcile, Action: ActionNone, Outcome: OutcomeLeftAlone, Reason: "no leader key: nothing to do"})
		return
	}
	// The leader's container is the one pgha planned for it, by name: a
	// container that only carries the same labels is not it.
	for _, c := range list {
		if m, ok := g.Config.Members[engineName(c)]; ok && m == leader.Value {
			g.decide(ctx, event{action: EventReconcile, id: c.ID, name: engineName(c), exitCode: -1})
			return
		}
	}
	g.log(Record{Event: EventReconcile, Member: leader.Value, Action: ActionNone, Outcome: OutcomeLeftAlone,
		Reason: fmt.Sprintf("the leader key names %s, which has no container of this cluster: the lease decides", leader.Value)})
}

// decide gathers the facts about one container, decides, acts, and logs the
// decision; it retries when etcd or the engine does not answer.
func (g *Guard) decide(ctx context.Context, ev event) {
	for attempt := 1; ; attempt++ {
		rec, err := g.once(ctx, ev)
		if err == nil || attempt == attempts || ctx.Err() != nil {
			g.log(rec)
			return
		}
		rec.Reason += fmt.Sprintf(" (attempt %d of %d, retrying)", attempt, attempts)
		g.log(rec)
		select {
		case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// once is one decision. The leader key is read before the container's state
// is: a member that starts again after the state was read rewrites the key
// (a new lease), which changes its revision, so the delete's comparison
// fails instead of removing a live member's key.
func (g *Guard) once(ctx context.Context, ev event) (Record, error) {
	rec := Record{Event: ev.action, Container: ev.name, Action: ActionNone}
	if !ev.at.IsZero() {
		rec.EventTime = &ev.at
	}
	fail := func(what string, err error) (Record, error) {
		rec.Outcome, rec.Reason = OutcomeFailed, what+": "+err.Error()
		return rec, err
	}
	leader, err := g.readLeader(ctx)
	if err != nil {
		return fail("reading the leader key", err)
	}
	// The key was read before now: within the window of the event, its die
	// is enough (see dieTrustWindow).
	// (An event from the future, by the engine's clock, is not trusted.)
	age := time.Since(ev.at)
	trustDie := ev.action == EventDie && !ev.at.IsZero() && age >= 0 && age < dieTrustWindow
	asked := time.Now()
	c, err := g.state(ctx, ev, trustDie)
	rec.ConfirmMs = ms(time.Since(asked))
	if err != nil {
		return fail("listing container "+shortID(ev.id)+" ("+ev.name+")", err)
	}
	if c.Name != "" {
		rec.Container = c.Name
	}
	v := Decide(Facts{Config: g.Config, Event: ev.action, Container: c, Leader: leader})
	rec.Member, rec.Reason = v.Member, v.Reason
	if !v.Delete {
		rec.Outcome = OutcomeLeftAlone
		return rec, nil
	}
	rec.Action = ActionDelete
	deleted, err := g.compareAndDelete(ctx, leader)
	if !ev.at.IsZero() {
		rec.DecisionMs = ms(time.Since(ev.at))
	}
	switch {
	case err != nil:
		return fail(v.Reason+"; the delete failed", err)
	case deleted:
		rec.Outcome = OutcomeDeleted
	default:
		rec.Outcome = OutcomeChanged
		rec.Reason += "; not deleted: the key changed meanwhile"
	}
	return rec, nil
}

// state is the engine's word on the event's container, from the container
// list (no inspect: the proxy refuses it). After a die event it asks again
// until the list no longer says running: the engine emits die before it
// updates the list. Still running after confirmWait is an error, so that
// the decision is tried again (a container started again meanwhile stays
// running, and its key is never touched).
func (g *Guard) state(ctx context.Context, ev event, trustDie bool) (Container, error) {
	f := g.patroniFilter()
	f.Add("id", ev.id)
	deadline := time.Now().Add(confirmWait)
	for {
		lctx, cancel := context.WithTimeout(ctx, callTimeout)
		list, err := g.Engine.ContainerList(lctx, container.ListOptions{All: true, Filters: f})
		cancel()
		if err != nil {
			return Container{}, err
		}
		c := Container{ExitCode: ev.exitCode}
		for _, s := range list {
			if s.ID == ev.id {
				c = containerFacts(s, ev.exitCode)
			}
		}
		if ev.action != EventDie || !c.Running || c.Paused {
			return c, nil
		}
		if trustDie && c.Found && !c.Restarting {
			// The list has not caught up with the die event yet.
			c.Running, c.Status, c.ByDieEvent = false, container.StateExited, true
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("the engine still lists it %s %s after its die event", c.Status, confirmWait)
		}
		select {
		case <-time.After(confirmEvery):
		case <-ctx.Done():
			return c, ctx.Err()
		}
	}
}

func (g *Guard) leaderKey() string { return g.Config.LeaderKey }

// readLeader reads the leader key with its revision.
func (g *Guard) readLeader(ctx context.Context) (LeaderKey, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := g.Etcd.Get(cctx, g.leaderKey())
	if err != nil {
		return LeaderKey{}, err
	}
	if len(resp.Kvs) == 0 {
		return LeaderKey{}, nil
	}
	kv := resp.Kvs[0]
	return LeaderKey{Exists: true, Value: string(kv.Value), ModRevision: kv.ModRevision}, nil
}

// compareAndDelete deletes the leader key in one transaction, only if it
// still holds the value and revision that were read.
func (g *Guard) compareAndDelete(ctx context.Context, k LeaderKey) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	key := g.leaderKey()
	resp, err := g.Etcd.Txn(cctx).
		If(clientv3.Compare(clientv3.Value(key), "=", k.Value), clientv3.Compare(clientv3.ModRevision(key), "=", k.ModRevision)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// containerFacts reads a list entry. The list has no exit code: it is the
// die event's, or the one in the list's status ("Exited (137) 2 seconds ago").
func containerFacts(s container.Summary, exitCode int) Container {
	st := s.State
	c := Container{Found: true, Name: engineName(s), Labels: s.Labels, Status: st, ExitCode: exitCode,
		Running: st == container.StateRunning || st == container.StatePaused || st == container.StateRestarting,
		Paused:  st == container.StatePaused, Restarting: st == container.StateRestarting}
	if exitCode < 0 {
		c.ExitCode = statusExitCode(s.Status)
	}
	return c
}

// statusExitCode is the code in an "Exited (137) ..." status, -1 when none.
func statusExitCode(status string) int {
	var code int
	if _, err := fmt.Sscanf(status, "Exited (%d)", &code); err != nil {
		return -1
	}
	return code
}

func engineName(s container.Summary) string {
	if len(s.Names) == 0 {
		return ""
	}
	return strings.TrimPrefix(s.Names[0], "/")
}

func (g *Guard) log(r Record) {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	line, _ := json.Marshal(r)
	g.mu.Lock()
	defer g.mu.Unlock()
	_, _ = g.Log.Write(append(line, '\n'))
}

// timestamp is the engine's since/until format: seconds.nanoseconds.
func timestamp(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func shortID(id string) string { return id[:min(12, len(id))] }
