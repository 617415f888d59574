package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/topology"
)

// replaceOldGuard removes the guard's containers (the guard and its API
// proxy) when they run another pgha build than this one, so that up
// recreates them: they keep no state.
func (d *Docker) replaceOldGuard(ctx context.Context, topo topology.Cluster, img images.Image, existing observed) error {
	if !topo.Guard {
		return nil
	}
	for _, node := range []string{topology.GuardNode, topology.GuardProxyNode} {
		name := topo.ContainerName(node)
		c, ok := existing[name]
		if !ok || !c.Exists() || c.Image == img.Ref {
			continue
		}
		if err := d.Engine.API.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !engine.IsNotFound(err) {
			return fmt.Errorf("replacing the guard's container %s (it runs %s, this pgha is %s): %w", name, c.Image, img.Ref, err)
		}
		d.Progress.Info(fmt.Sprintf("  replacing the guard's container %s: it ran %s", name, c.Image))
		existing[name] = engine.Container{Name: name, State: engine.StateMissing}
	}
	return nil
}

// GuardState is the guard's container and its latest decision.
type GuardState struct {
	Container string `json:"container"`
	// State is the engine's word on the container: running, exited (2), missing.
	State string `json:"state"`
	// Watching says the guard runs and is subscribed to the engine's events.
	Watching     bool          `json:"watching"`
	LastDecision *guard.Record `json:"lastDecision,omitempty"`
	// Hosts are the swarm nodes with a guard of their own (on a swarm);
	// Blind says what no guard can see there.
	Hosts []string `json:"hosts,omitempty"`
	Blind string   `json:"blind,omitempty"`
	// Records are the log lines read (not in JSON: status shows the last decision).
	Records []guard.Record `json:"-"`
}

// guardLogLines is how much of the guard's log is read back.
const guardLogLines = 200

// GuardStatus reads the guard's state and the end of its log.
func (d *Docker) GuardStatus(ctx context.Context, topo topology.Cluster) (GuardState, error) {
	if d.swarm != nil {
		return d.swarm.guardStatus(ctx, topo)
	}
	name := topo.ContainerName(topology.GuardNode)
	c, err := d.Engine.Inspect(ctx, topo.Name, name)
	if err != nil {
		return GuardState{}, err
	}
	st := GuardState{Container: name, State: c.Describe()}
	if st.State == string(engine.StateMissing) {
		return st, nil
	}
	text, err := d.Engine.LogTail(ctx, name, fmt.Sprint(guardLogLines))
	if err != nil {
		return st, fmt.Errorf("reading the guard's log: %w", err)
	}
	st.Records = guard.ParseLog(strings.NewReader(text))
	st.LastDecision = guard.LastDecision(st.Records)
	st.Watching = c.Running() && watching(st.Records)
	return st, nil
}

// watching says whether the guard's latest run has connected to the event
// stream and not lost it since.
func watching(recs []guard.Record) bool {
	for i := len(recs) - 1; i >= 0; i-- {
		switch recs[i].Event {
		case "connected":
			return true
		case "start", "disconnected", "stop":
			return false
		}
	}
	return false
}

// Health is the guard's status in a few words, for the status table:
// whether it watches the engine's events and, when its latest decision
// deleted a leader key or failed, when. The whole decision is in `pgha
// status -o json` (guard.lastDecision) and in the guard's log.
func (g GuardState) Health() string {
	if g.State != string(container.StateRunning) {
		return "-"
	}
	h := "not watching"
	if g.Watching {
		h = "watching"
	}
	if len(g.Hosts) > 0 {
		h += " on " + strings.Join(g.Hosts, ",") + "; a lost host: the lease decides"
	}
	if g.LastDecision == nil {
		return h
	}
	at := g.LastDecision.Time.Local().Format(time.TimeOnly)
	switch g.LastDecision.Outcome {
	case guard.OutcomeDeleted:
		return h + "; deleted key " + at
	case guard.OutcomeFailed:
		return h + "; failed " + at
	}
	return h
}
