package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/topology"
)

// observed is what the engine has of a cluster before up changes anything.
type observed map[string]engine.Container

// preflight checks, before anything is created, that every name the cluster
// needs is free or already the cluster's own, and that every host port the
// cluster will publish is free. It reports every problem at once.
func (d *Docker) preflight(ctx context.Context, topo topology.Cluster, specs []Spec) (observed, error) {
	var problems []string
	existing := observed{}
	for _, s := range specs {
		c, err := d.Engine.Inspect(ctx, topo.Name, s.Name)
		if err != nil {
			return nil, err
		}
		if c.Exists() && !c.Ours {
			problems = append(problems, fmt.Sprintf("container %q exists and was not created by pgha for cluster %q; rename or remove it, or choose another cluster name with --name", s.Name, topo.Name))
			continue
		}
		existing[s.Name] = c
		if s.Volume == "" {
			continue
		}
		if owned, err := d.volumeOwned(ctx, topo.Name, s.Volume); err != nil {
			return nil, err
		} else if !owned {
			problems = append(problems, fmt.Sprintf("volume %q exists and was not created by pgha for cluster %q", s.Volume, topo.Name))
		}
	}
	nw, err := d.Engine.API.NetworkInspect(ctx, topo.NetworkName(), network.InspectOptions{})
	switch {
	case engine.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("inspecting network %s: %w", topo.NetworkName(), err)
	case nw.Labels[topology.LabelCluster] != topo.Name:
		problems = append(problems, fmt.Sprintf("network %q exists and was not created by pgha for cluster %q; remove it or choose another cluster name with --name", topo.NetworkName(), topo.Name))
	}
	portProblems, err := d.checkPorts(ctx, topo, specs, existing)
	if err != nil {
		return nil, err
	}
	problems = append(problems, portProblems...)
	if len(problems) > 0 {
		return nil, joinProblems(fmt.Sprintf("cannot create cluster %q (nothing was changed)", topo.Name), problems)
	}
	return existing, nil
}

// checkPorts names every host port the cluster needs that something else
// holds. Ports the cluster's own running or paused containers publish are
// in use by design. The engine is asked which of its containers publish
// them; for a local engine the loopback port is also tried, which finds
// processes outside containers.
func (d *Docker) checkPorts(ctx context.Context, topo topology.Cluster, specs []Spec, existing observed) ([]string, error) {
	held := map[int]bool{}
	for _, s := range specs {
		switch existing[s.Name].State {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			for _, p := range existing[s.Name].PortBindings {
				held[p] = true
			}
		}
	}
	byContainer, err := d.publishedPorts(ctx)
	if err != nil {
		return nil, err
	}
	kind := ""
	for _, s := range specs {
		if s.Role == topology.RoleObjectStore {
			kind = s.Node
		}
	}
	var problems []string
	where := "127.0.0.1"
	if d.Engine.Endpoint.Remote {
		where = "127.0.0.1 of the engine's host " + d.Engine.Endpoint.PublishHost
	}
	for _, hp := range topo.HostPorts(kind) {
		if held[hp.Port] {
			continue
		}
		if owner, ok := byContainer[hp.Port]; ok {
			problems = append(problems, fmt.Sprintf("host port %s is already published by container %s; free it or move the cluster with --port-offset", hp, owner))
			continue
		}
		if d.Engine.Endpoint.Remote {
			continue // the engine's host is not this machine: its kernel cannot be asked from here
		}
		if err := portFree(hp.Port); err != nil {
			problems = append(problems, fmt.Sprintf("host port %s is already in use on %s: %v; free it or move the cluster with --port-offset", hp, where, err))
		}
	}
	return problems, nil
}

// publishedPorts maps every host port the engine's running containers
// publish on loopback or all addresses to the container's name.
func (d *Docker) publishedPorts(ctx context.Context) (map[int]string, error) {
	cs, err := d.Engine.API.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the engine's containers: %w", err)
	}
	out := map[int]string{}
	for _, c := range cs {
		for _, p := range c.Ports {
			if p.PublicPort != 0 && (p.IP == "" || p.IP == "0.0.0.0" || p.IP == "::" || p.IP == "127.0.0.1") {
				out[int(p.PublicPort)] = engine.SummaryName(c)
			}
		}
	}
	return out, nil
}

// portFree says whether a TCP port can be bound on this machine's loopback.
func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// volumeOwned says whether a volume is absent or belongs to the cluster.
func (d *Docker) volumeOwned(ctx context.Context, cluster, name string) (bool, error) {
	v, err := d.Engine.API.VolumeInspect(ctx, name)
	if engine.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspecting volume %s: %w", name, err)
	}
	return v.Labels[topology.LabelCluster] == cluster, nil
}
