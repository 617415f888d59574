// Package cluster is a cluster's lifecycle on a Docker engine: plan the
// containers from the topology, check that nothing is in the way, create
// and start what is missing, wait until the cluster is really ready, report
// its status, and remove it. State is read back from the engine (labels),
// never remembered.
//
// The layout, for the next engineer:
//
//	cluster.go    the backend (Docker: one engine), finding a cluster by its labels
//	plan.go       the containers of each role, from the topology (a new role: one planner)
//	preflight.go  names and ports that are in the way
//	up.go         up as an ordered list of named steps
//	network.go    cutting a member off the cluster network and joining it again
//	status.go     the summary table's data
//	down.go       removal of what carries the cluster's label
//	guard.go      the guard's state, read back from its log
//	stanza.go     the pgBackRest stanza, made during up
//
// A second backend (a Swarm of engines) implements Backend beside Docker.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// Backend runs clusters somewhere. The layers above (checks, day-2
// operations, faults) reach a member's container through Where, whatever
// the backend.
type Backend interface {
	// Up brings the cluster to what its topology describes and waits until it is ready.
	Up(ctx context.Context, topo topology.Cluster, timeout time.Duration) (UpResult, error)
	// Down removes what carries the cluster's label; volumes and secrets too with volumes.
	Down(ctx context.Context, name string, volumes bool) (DownResult, error)
	// Find reads the topology a cluster was made with; ErrNoCluster when it does not exist.
	Find(ctx context.Context, name string) (topology.Cluster, error)
	// Status reports every container the topology expects.
	Status(ctx context.Context, name string) (ClusterStatus, error)
	// Where says which engine runs a member's container, and its name there.
	Where(topo topology.Cluster, node string) (*engine.Engine, string)
	// Isolate cuts a member off the cluster network; Rejoin attaches it again.
	Isolate(ctx context.Context, topo topology.Cluster, node string) error
	Rejoin(ctx context.Context, topo topology.Cluster, node string) error
	// Member is the engine's word on a member's container.
	Member(ctx context.Context, topo topology.Cluster, node string) (engine.Container, error)
	// StoreKind is the kind of the cluster's object store container ("" for none).
	StoreKind(ctx context.Context, topo topology.Cluster) (string, error)
	// RemoveMembers removes members' containers; RemoveVolumes their data volumes.
	RemoveMembers(ctx context.Context, topo topology.Cluster, nodes []string) error
	RemoveVolumes(ctx context.Context, topo topology.Cluster, nodes []string) error
	// Access is how the cluster's published ports are reached from here.
	Access(topo topology.Cluster, creds clients.Credentials) clients.Access
}

// Docker is the backend of one Docker engine (local, or remote through a
// docker context).
type Docker struct {
	Engine   *engine.Engine
	Progress progress.Progress
	// swarm is set when the cluster's members are services of a swarm
	// managed by Engine: then a member's container is found on its node.
	swarm *Swarm
}

// StartMember starts a stopped member again (a running one is left alone):
// its container on one engine, a new task of its service on a swarm.
func (d *Docker) StartMember(ctx context.Context, topo topology.Cluster, node string) error {
	if d.swarm != nil {
		return d.swarm.StartMember(ctx, topo, node)
	}
	name := topo.ContainerName(node)
	info, err := d.Engine.API.ContainerInspect(ctx, name)
	if err != nil {
		return err
	}
	if info.State != nil && info.State.Running {
		return nil
	}
	if err := d.Engine.API.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	return nil
}

// OnSwarm says whether d is a swarm's backend.
func (d *Docker) OnSwarm() bool { return d.swarm != nil }

// Swarm is the swarm backend d stands for (nil on one engine).
func (d *Docker) Swarm() *Swarm { return d.swarm }

// at is the engine and container of a member.
func (d *Docker) at(ctx context.Context, topo topology.Cluster, node string) (*engine.Engine, string, error) {
	if d.swarm != nil {
		return d.swarm.locate(ctx, topo, node)
	}
	return d.Engine, topo.ContainerName(node), nil
}

var _ Backend = (*Docker)(nil)

// NewDocker is the one-engine backend; progress may be nil.
func NewDocker(eng *engine.Engine, p progress.Progress) *Docker {
	if p == nil {
		p = progress.Discard{}
	}
	return &Docker{Engine: eng, Progress: p}
}

// Where: on one engine every member is a container of that engine.
func (d *Docker) Where(topo topology.Cluster, node string) (*engine.Engine, string) {
	if d.swarm != nil {
		return d.swarm.Where(topo, node)
	}
	return d.Engine, topo.ContainerName(node)
}

// Access: the published ports are on the engine's host.
func (d *Docker) Access(topo topology.Cluster, creds clients.Credentials) clients.Access {
	if d.swarm != nil {
		return d.swarm.Access(topo, creds)
	}
	return clients.Access{Topo: topo, Host: d.Engine.Endpoint.PublishHost, Creds: creds}
}

// AccessFor reads a cluster's credentials and returns its Access.
func AccessFor(b Backend, topo topology.Cluster) (clients.Access, error) {
	store, err := secrets.For(topo.Name)
	if err != nil {
		return clients.Access{}, err
	}
	creds, err := clients.CredentialsFrom(store)
	if err != nil {
		return clients.Access{}, err
	}
	return b.Access(topo, creds), nil
}

// ErrNoCluster is returned for a command on a cluster that does not exist.
type ErrNoCluster struct{ Name string }

func (e ErrNoCluster) Error() string {
	return fmt.Sprintf("cluster %q does not exist (no container or network labelled %s=%s); create it with `pgha up --name %s`",
		e.Name, topology.LabelCluster, e.Name, e.Name)
}

// Find returns the topology a cluster was created with, read from the label
// on its network or containers; ErrNoCluster when nothing carries its label.
func (d *Docker) Find(ctx context.Context, name string) (topology.Cluster, error) {
	var raw string
	nets, err := d.Engine.API.NetworkList(ctx, network.ListOptions{Filters: engine.ClusterFilter(name)})
	if err != nil {
		return topology.Cluster{}, fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range nets {
		if v := n.Labels[topology.LabelTopology]; v != "" {
			raw = v
			// A scaled cluster's topology is on its marker volume (scale.go).
			if scaled, err := d.scaledTopology(ctx, name, n.ID); err != nil {
				return topology.Cluster{}, err
			} else if scaled != "" {
				raw = scaled
			}
		}
	}
	if raw == "" {
		cs, err := d.Engine.API.ContainerList(ctx, container.ListOptions{All: true, Filters: engine.ClusterFilter(name)})
		if err != nil {
			return topology.Cluster{}, fmt.Errorf("listing containers: %w", err)
		}
		for _, c := range cs {
			if v := c.Labels[topology.LabelTopology]; v != "" {
				raw = v
			}
		}
	}
	if raw == "" {
		return topology.Cluster{}, ErrNoCluster{Name: name}
	}
	topo := topology.Cluster{Guard: true} // clusters labelled before the guard existed get one
	if err := json.Unmarshal([]byte(raw), &topo); err != nil {
		return topology.Cluster{}, fmt.Errorf("cluster %s: unreadable topology label: %w", name, err)
	}
	gen, err := d.dataGeneration(ctx, name)
	if err != nil {
		return topology.Cluster{}, err
	}
	topo.DataGeneration = gen
	return topo, nil
}

// dataGeneration is the newest generation among the cluster's data volumes
// (0 when no restore made one).
func (d *Docker) dataGeneration(ctx context.Context, name string) (int, error) {
	if d.swarm != nil {
		// The volumes are on the nodes that run the members.
		gen := 0
		for _, h := range sortedKeys(d.swarm.Nodes) {
			g, err := NewDocker(d.swarm.Nodes[h], nil).dataGeneration(ctx, name)
			if err != nil {
				return 0, fmt.Errorf("on %s: %w", h, err)
			}
			gen = max(gen, g)
		}
		return gen, nil
	}
	vols, err := d.Engine.API.VolumeList(ctx, volume.ListOptions{Filters: engine.ClusterFilter(name)})
	if err != nil {
		return 0, fmt.Errorf("listing volumes: %w", err)
	}
	gen := 0
	for _, v := range vols.Volumes {
		if g, err := strconv.Atoi(v.Labels[topology.LabelGeneration]); err == nil && g > gen {
			gen = g
		}
	}
	return gen, nil
}

// topologyLabel is the topology as stored on the cluster's resources.
func topologyLabel(topo topology.Cluster) string {
	b, _ := json.Marshal(topo)
	return string(b)
}

// Names lists the clusters that have resources on the engine.
func (d *Docker) Names(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	api := d.Engine.API
	labelled := engine.LabelFilter(topology.LabelCluster)
	cs, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: labelled})
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		seen[c.Labels[topology.LabelCluster]] = true
	}
	nets, err := api.NetworkList(ctx, network.ListOptions{Filters: labelled})
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		seen[n.Labels[topology.LabelCluster]] = true
	}
	vols, err := api.VolumeList(ctx, volume.ListOptions{Filters: labelled})
	if err != nil {
		return nil, err
	}
	for _, v := range vols.Volumes {
		seen[v.Labels[topology.LabelCluster]] = true
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// StoreKind returns the kind of the cluster's existing object store
// container (versitygw or minio), or "" when there is none.
func (d *Docker) StoreKind(ctx context.Context, topo topology.Cluster) (string, error) {
	if d.swarm != nil {
		return d.swarm.StoreKind(ctx, topo)
	}
	for _, kind := range []string{topology.StoreVersityGW, topology.StoreMinIO} {
		c, err := d.Engine.Inspect(ctx, topo.Name, topo.ContainerName(kind))
		if err != nil {
			return "", err
		}
		if c.Ours {
			return kind, nil
		}
	}
	return "", nil
}

// Member is the engine's word on a member's container (State missing when it
// is absent or not the cluster's own).
func (d *Docker) Member(ctx context.Context, topo topology.Cluster, node string) (engine.Container, error) {
	if d.swarm != nil {
		return d.swarm.Member(ctx, topo, node)
	}
	c, err := d.Engine.Inspect(ctx, topo.Name, topo.ContainerName(node))
	if err == nil && !c.Ours {
		c.State = engine.StateMissing
	}
	return c, err
}

// ContainerState is a member's state in a word or two, for messages:
// running, paused, "exited (137)", missing.
func (d *Docker) ContainerState(ctx context.Context, topo topology.Cluster, node string) string {
	c, err := d.Member(ctx, topo, node)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return c.Describe()
}

// joinProblems formats a list of problems as one error.
func joinProblems(head string, problems []string) error {
	if len(problems) == 1 {
		return fmt.Errorf("%s: %s", head, problems[0])
	}
	return fmt.Errorf("%s:\n  - %s", head, strings.Join(problems, "\n  - "))
}
