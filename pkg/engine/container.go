package engine

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/pgha/pgha/pkg/topology"
)

// Container is what the engine says about one container of a cluster.
type Container struct {
	Name string `json:"name"`
	Node string `json:"node"`
	Role string `json:"role"`
	// Host is the swarm node that runs it ("" on one engine).
	Host  string `json:"host,omitempty"`
	ID    string `json:"id,omitempty"`
	Image string `json:"image,omitempty"`
	// State is the engine's state (running, exited, paused, created, ...) or missing.
	State     container.ContainerState `json:"state"`
	ExitCode  int                      `json:"exitCode,omitempty"`
	OOMKilled bool                     `json:"oomKilled,omitempty"`
	// Networks are the networks it is attached to, by name.
	Networks []string `json:"networks,omitempty"`
	// Ours says whether the container carries the asked cluster's label.
	Ours bool `json:"-"`
	// PortBindings are the host ports it publishes (when started).
	PortBindings []int `json:"-"`
}

// StateMissing is the State of a container that does not exist.
const StateMissing container.ContainerState = "missing"

// Running says whether the container runs (paused counts as not running).
func (c Container) Running() bool { return c.State == container.StateRunning }

// Exists says whether the engine has the container.
func (c Container) Exists() bool { return c.State != StateMissing }

// Describe is the container's state in a word or two: running, paused,
// "exited (137)", "exited (137, OOM-killed)", or missing (also when the
// container is not the cluster's own).
func (c Container) Describe() string {
	switch {
	case c.State == StateMissing || !c.Ours:
		return string(StateMissing)
	case c.State == container.StateExited && c.OOMKilled:
		return fmt.Sprintf("exited (%d, OOM-killed)", c.ExitCode)
	case c.State == container.StateExited:
		return fmt.Sprintf("exited (%d)", c.ExitCode)
	}
	return string(c.State)
}

// OnNetwork says whether the container is attached to the named network.
func (c Container) OnNetwork(name string) bool {
	for _, n := range c.Networks {
		if n == name {
			return true
		}
	}
	return false
}

// Inspect returns the named container, State missing when the engine has no
// such container. Ours says whether it carries cluster's label.
func (e *Engine) Inspect(ctx context.Context, cluster, name string) (Container, error) {
	c := Container{Name: name, State: StateMissing}
	info, err := e.API.ContainerInspect(ctx, name)
	if IsNotFound(err) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("inspecting container %s: %w", name, err)
	}
	c.ID = info.ID
	if info.Config != nil {
		c.Image = info.Config.Image
		c.Node = info.Config.Labels[topology.LabelNode]
		c.Role = info.Config.Labels[topology.LabelRole]
		c.Ours = info.Config.Labels[topology.LabelCluster] == cluster
	}
	if info.State != nil {
		c.State = info.State.Status
		c.ExitCode = info.State.ExitCode
		c.OOMKilled = info.State.OOMKilled
	}
	if info.NetworkSettings != nil {
		for n := range info.NetworkSettings.Networks {
			c.Networks = append(c.Networks, n)
		}
	}
	if info.HostConfig != nil {
		for _, bs := range info.HostConfig.PortBindings {
			for _, b := range bs {
				var p int
				if _, err := fmt.Sscan(b.HostPort, &p); err == nil {
					c.PortBindings = append(c.PortBindings, p)
				}
			}
		}
	}
	return c, nil
}

// LabelFilter matches resources carrying the label (with a value, when given).
func LabelFilter(key string, value ...string) filters.Args {
	if len(value) > 0 {
		return filters.NewArgs(filters.Arg("label", key+"="+value[0]))
	}
	return filters.NewArgs(filters.Arg("label", key))
}

// ClusterFilter matches the resources of one cluster.
func ClusterFilter(name string) filters.Args { return LabelFilter(topology.LabelCluster, name) }

// SummaryName is a listed container's name without the engine's leading "/".
func SummaryName(c container.Summary) string {
	if len(c.Names) > 0 && len(c.Names[0]) > 1 {
		return c.Names[0][1:]
	}
	return c.Labels[topology.LabelNode]
}
