package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/topology"
)

// ErrNoCluster is returned for a command on a cluster that does not exist.
type ErrNoCluster struct{ Name string }

func (e ErrNoCluster) Error() string {
	return fmt.Sprintf("cluster %q does not exist (no container or network labelled %s=%s); create it with `pgha up --name %s`",
		e.Name, topology.LabelCluster, e.Name, e.Name)
}

// Container is what the engine says about one container of a cluster.
type Container struct {
	Name  string `json:"name"`
	Node  string `json:"node"`
	Role  string `json:"role"`
	ID    string `json:"id,omitempty"`
	Image string `json:"image,omitempty"`
	// State is the engine's state (running, exited, paused, created, ...) or missing.
	State     string `json:"state"`
	ExitCode  int    `json:"exitCode,omitempty"`
	OOMKilled bool   `json:"oomKilled,omitempty"`
	// Ours says whether the container carries this cluster's label.
	Ours bool `json:"-"`
}

// StateMissing is the State of a container that does not exist.
const StateMissing = "missing"

// Running says whether the container runs (paused counts as not running).
func (c Container) Running() bool { return c.State == "running" }

// inspect returns the container with the given name, State missing when absent.
func (p *Provisioner) inspect(ctx context.Context, cluster, name string) (Container, error) {
	c := Container{Name: name, State: StateMissing}
	info, err := p.Docker.ContainerInspect(ctx, name)
	if client.IsErrNotFound(err) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("inspecting container %s: %w", name, err)
	}
	c.ID = info.ID
	c.Image = info.Config.Image
	c.Node = info.Config.Labels[topology.LabelNode]
	c.Role = info.Config.Labels[topology.LabelRole]
	c.Ours = info.Config.Labels[topology.LabelCluster] == cluster
	if info.State != nil {
		c.State = info.State.Status
		c.ExitCode = info.State.ExitCode
		c.OOMKilled = info.State.OOMKilled
	}
	return c, nil
}

// FindCluster returns the topology a cluster was created with, read from the
// label on its network or containers; ErrNoCluster when nothing carries its label.
func FindCluster(ctx context.Context, docker *client.Client, name string) (topology.Cluster, error) {
	var raw string
	nets, err := docker.NetworkList(ctx, network.ListOptions{Filters: clusterFilter(name)})
	if err != nil {
		return topology.Cluster{}, fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range nets {
		if v := n.Labels[topology.LabelTopology]; v != "" {
			raw = v
		}
	}
	if raw == "" {
		cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: clusterFilter(name)})
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
	return topo, nil
}

// topologyLabel is the topology as stored on the cluster's resources.
func topologyLabel(topo topology.Cluster) string {
	b, _ := json.Marshal(topo)
	return string(b)
}

// ClusterNames lists the clusters that have resources on the engine.
func ClusterNames(ctx context.Context, docker *client.Client) ([]string, error) {
	seen := map[string]bool{}
	cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: labelFilter(topology.LabelCluster)})
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		seen[c.Labels[topology.LabelCluster]] = true
	}
	nets, err := docker.NetworkList(ctx, network.ListOptions{Filters: labelFilter(topology.LabelCluster)})
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		seen[n.Labels[topology.LabelCluster]] = true
	}
	vols, err := docker.VolumeList(ctx, volume.ListOptions{Filters: labelFilter(topology.LabelCluster)})
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

// StoreKind returns the kind of the cluster's object store container
// (versitygw or minio), or "" when there is none.
func StoreKind(ctx context.Context, docker *client.Client, topo topology.Cluster) (string, error) {
	return (&Provisioner{Docker: docker}).storeKindOf(ctx, topo)
}

// storeKindOf returns the kind of the cluster's existing object store
// container, or "" when there is none.
func (p *Provisioner) storeKindOf(ctx context.Context, topo topology.Cluster) (string, error) {
	for _, kind := range []string{topology.StoreVersityGW, topology.StoreMinIO} {
		c, err := p.inspect(ctx, topo.Name, topo.ContainerName(kind))
		if err != nil {
			return "", err
		}
		if c.Ours {
			return kind, nil
		}
	}
	return "", nil
}

// joinProblems formats a list of problems as one error.
func joinProblems(head string, problems []string) error {
	if len(problems) == 1 {
		return fmt.Errorf("%s: %s", head, problems[0])
	}
	return fmt.Errorf("%s:\n  - %s", head, strings.Join(problems, "\n  - "))
}

// ContainerState returns the engine's word on a node's container: running,
// paused, "exited (137)", "missing" (also when it is not the cluster's own).
func ContainerState(ctx context.Context, docker *client.Client, topo topology.Cluster, node string) string {
	c, err := (&Provisioner{Docker: docker}).inspect(ctx, topo.Name, topo.ContainerName(node))
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return c.Describe()
}

// Describe is the container's state in a word or two: running, paused,
// "exited (137)", "exited (137, OOM-killed)", or missing (also when the
// container is not the cluster's own).
func (c Container) Describe() string {
	switch {
	case c.State == StateMissing || !c.Ours:
		return StateMissing
	case c.State == "exited" && c.OOMKilled:
		return fmt.Sprintf("exited (%d, OOM-killed)", c.ExitCode)
	case c.State == "exited":
		return fmt.Sprintf("exited (%d)", c.ExitCode)
	}
	return c.State
}
