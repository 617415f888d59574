package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/pgha/pgha/pkg/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Engine is the part of the Docker API the guard uses: events, inspect and list.
type Engine interface {
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
}

// Guard watches one cluster.
type Guard struct {
	Engine Engine
	Etcd   clientv3.KV
	Topo   topology.Cluster
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
)

// Run watches until ctx ends. A dropped event stream is reopened with
// backoff; every (re)connection reconciles the current state first.
func (g *Guard) Run(ctx context.Context) error {
	g.log(Record{Event: "start", Reason: fmt.Sprintf("guarding cluster %s: leader key %s, Patroni nodes %s",
		g.Topo.Name, g.leaderKey(), strings.Join(nodeNames(g.Topo), ", "))})
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
	return filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("event", string(events.ActionPause)),
		filters.Arg("label", topology.LabelCluster+"="+g.Topo.Name),
		filters.Arg("label", topology.LabelRole+"="+topology.RolePatroni),
	)
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
			at := time.Unix(0, m.TimeNano)
			if at.Before(since) {
				g.log(Record{Event: string(m.Action), Container: m.Actor.Attributes["name"], Reason: "an event from before the connection: stale, ignored"})
				continue
			}
			g.decide(ctx, string(m.Action), m.Actor.ID, at)
		}
	}
}

// reconcile looks at the state of now: when the leader key names a member
// whose container the engine reports dead, it acts as on a die event.
func (g *Guard) reconcile(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	list, err := g.Engine.ContainerList(lctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", topology.LabelCluster+"="+g.Topo.Name),
		filters.Arg("label", topology.LabelRole+"="+topology.RolePatroni))})
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
	for _, c := range list {
		if c.Labels[topology.LabelNode] == leader.Value {
			g.decide(ctx, EventReconcile, c.ID, time.Time{})
			return
		}
	}
	g.log(Record{Event: EventReconcile, Member: leader.Value, Action: ActionNone, Outcome: OutcomeLeftAlone,
		Reason: fmt.Sprintf("the leader key names %s, which has no container of this cluster: the lease decides", leader.Value)})
}

// decide gathers the facts about one container, decides, acts, and logs the
// decision; it retries when etcd or the engine does not answer.
func (g *Guard) decide(ctx context.Context, event, id string, at time.Time) {
	for attempt := 1; ; attempt++ {
		rec, err := g.once(ctx, event, id, at)
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

// once is one decision. The leader key is read before the container is
// inspected: a member that starts again after the inspection rewrites the
// key (a new lease), which changes its revision, so the delete's comparison
// fails instead of removing a live member's key.
func (g *Guard) once(ctx context.Context, event, id string, at time.Time) (Record, error) {
	rec := Record{Event: event, Action: ActionNone}
	if !at.IsZero() {
		rec.EventTime = &at
	}
	fail := func(what string, err error) (Record, error) {
		rec.Outcome, rec.Reason = OutcomeFailed, what+": "+err.Error()
		return rec, err
	}
	leader, err := g.readLeader(ctx)
	if err != nil {
		return fail("reading the leader key", err)
	}
	ictx, cancel := context.WithTimeout(ctx, callTimeout)
	asked := time.Now()
	info, err := g.Engine.ContainerInspect(ictx, id)
	cancel()
	rec.ConfirmMs = ms(time.Since(asked))
	c := Container{}
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return fail("inspecting container "+shortID(id), err)
	default:
		c = containerFacts(info)
	}
	rec.Container = c.Name
	v := Decide(Facts{Topo: g.Topo, Event: event, Container: c, Leader: leader})
	rec.Member, rec.Reason = v.Member, v.Reason
	if !v.Delete {
		rec.Outcome = OutcomeLeftAlone
		return rec, nil
	}
	rec.Action = ActionDelete
	deleted, err := g.compareAndDelete(ctx, leader)
	if !at.IsZero() {
		rec.DecisionMs = ms(time.Since(at))
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

func (g *Guard) leaderKey() string { return g.Topo.KeyPrefix() + "leader" }

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

func containerFacts(info container.InspectResponse) Container {
	c := Container{Found: true, Name: strings.TrimPrefix(info.Name, "/")}
	if info.Config != nil {
		c.Labels = info.Config.Labels
	}
	if st := info.State; st != nil {
		c.Status, c.Running, c.Paused, c.Restarting = st.Status, st.Running, st.Paused, st.Restarting
		c.ExitCode, c.OOMKilled = st.ExitCode, st.OOMKilled
	}
	return c
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

func nodeNames(topo topology.Cluster) []string {
	var out []string
	for _, n := range topo.Patroni {
		out = append(out, n.Name)
	}
	return out
}
