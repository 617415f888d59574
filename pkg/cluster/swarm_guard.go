package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/volume"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/topology"
)

// The guard on a swarm: engine events are local to each engine, so every
// node that runs a Patroni member runs its own guard (and its API proxy) as
// plain containers of its own engine, attached to the attachable overlay to
// reach etcd. Each watches its own engine's die events with the same rules
// as on one engine. A whole host that dies sends no event at all: then
// Patroni's lease decides.

// guardHosts are the nodes that run a Patroni member, sorted.
func (s *Swarm) guardHosts(topo topology.Cluster, places map[string]topology.Placement) []string {
	hosts := map[string]bool{}
	for _, n := range topo.Patroni {
		if p, ok := places[n.Name]; ok {
			hosts[p.Node] = true
		}
	}
	return sortedKeys(hosts)
}

// startGuards creates and starts one of the guard's containers on every
// node that runs a Patroni member.
func (s *Swarm) startGuards(ctx context.Context, u *upRun, sp Spec) error {
	for _, h := range s.guardHosts(u.topo, u.places) {
		eng, err := s.node(h)
		if err != nil {
			return err
		}
		c, err := eng.Inspect(ctx, u.topo.Name, sp.Name)
		if err != nil {
			return err
		}
		if c.Exists() && c.Image != sp.Config.Image {
			if err := NewDocker(eng, nil).removeContainer(ctx, u.topo, sp.Name); err != nil {
				return err
			}
			c.State = engine.StateMissing
		}
		if !c.Exists() {
			if sp.Volume != "" {
				if _, err := eng.API.VolumeCreate(ctx, volume.CreateOptions{Name: sp.Volume, Labels: u.topo.Labels(topology.RoleVolume, sp.Node)}); err != nil {
					return fmt.Errorf("creating volume %s on %s: %w", sp.Volume, h, err)
				}
			}
			if _, err := eng.API.ContainerCreate(ctx, sp.Config, sp.Host, networking(u.topo, sp), nil, sp.Name); err != nil {
				return fmt.Errorf("creating the guard's container %s on %s: %w", sp.Name, h, err)
			}
		}
		// Started as on one engine: files copied in, then started.
		local := &upRun{d: NewDocker(eng, s.Progress), topo: u.topo}
		if err := local.start(ctx, sp); err != nil {
			return fmt.Errorf("on %s: %w", h, err)
		}
	}
	return nil
}

// guardStatus is the guards of every node as one: watching when each is.
func (s *Swarm) guardStatus(ctx context.Context, topo topology.Cluster) (GuardState, error) {
	places, err := s.currentPlaces(ctx, topo)
	if err != nil {
		return GuardState{}, err
	}
	out := GuardState{Container: topo.ContainerName(topology.GuardNode), Watching: true, State: "running"}
	var where []string
	for _, h := range s.guardHosts(topo, places) {
		eng, err := s.node(h)
		if err != nil {
			return GuardState{}, err
		}
		g, err := NewDocker(eng, nil).GuardStatus(ctx, topo)
		if err != nil {
			return GuardState{}, fmt.Errorf("the guard on %s: %w", h, err)
		}
		where = append(where, fmt.Sprintf("%s: %s", h, g.Health()))
		out.Watching = out.Watching && g.Watching
		if g.State != "running" {
			out.State = fmt.Sprintf("%s on %s", g.State, h)
		}
		out.Records = append(out.Records, g.Records...)
		if g.LastDecision != nil && (out.LastDecision == nil || g.LastDecision.Time.After(out.LastDecision.Time)) {
			out.LastDecision = g.LastDecision
		}
	}
	// One log of every guard, in time order, as one guard's would be.
	sort.SliceStable(out.Records, func(i, j int) bool { return out.Records[i].Time.Before(out.Records[j].Time) })
	out.Container += " on each node (" + strings.Join(where, "; ") + ")"
	out.Hosts = s.guardHosts(topo, places)
	out.Blind = "a host that dies whole (its engine with it) sends no event: Patroni's leader lease decides"
	return out, nil
}

// guardMember is the guard's containers of every node as one.
func (s *Swarm) guardMember(ctx context.Context, topo topology.Cluster, node string) (engine.Container, error) {
	name := topo.ContainerName(node)
	places, err := s.currentPlaces(ctx, topo)
	if err != nil {
		return engine.Container{}, err
	}
	out := engine.Container{Name: name, State: engine.StateMissing}
	for i, h := range s.guardHosts(topo, places) {
		eng, err := s.node(h)
		if err != nil {
			return out, err
		}
		c, err := eng.Inspect(ctx, topo.Name, name)
		if err != nil {
			return out, err
		}
		c.Host = strings.Join(s.guardHosts(topo, places), ",")
		if i == 0 || !c.Running() {
			out = c
		}
	}
	return out, nil
}

// currentPlaces is where the cluster's members run now, from their tasks.
func (s *Swarm) currentPlaces(ctx context.Context, topo topology.Cluster) (map[string]topology.Placement, error) {
	out := map[string]topology.Placement{}
	for _, n := range topo.Patroni {
		t, ok, err := s.currentTask(ctx, topo.ContainerName(n.Name))
		if err != nil {
			return nil, err
		}
		if ok && t.Host != "" {
			out[n.Name] = topology.Placement{Node: t.Host}
		}
	}
	return out, nil
}

// isGuardNode says whether a node name is one of the guard's containers.
func isGuardNode(node string) bool {
	return node == topology.GuardNode || node == topology.GuardProxyNode
}
