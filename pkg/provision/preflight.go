package provision

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/topology"
)

// preflight checks, before anything is created, that every name the cluster
// needs is free or already the cluster's own, and that every host port the
// cluster will publish is free. It reports every problem at once.
func (p *Provisioner) preflight(ctx context.Context, topo topology.Cluster, specs []spec) (map[string]Container, error) {
	var problems []string
	existing := map[string]Container{}
	for _, s := range specs {
		c, err := p.inspect(ctx, topo.Name, s.name)
		if err != nil {
			return nil, err
		}
		if c.State != StateMissing && !c.Ours {
			problems = append(problems, fmt.Sprintf("container %q exists and was not created by pgha for cluster %q; rename or remove it, or choose another cluster name with --name", s.name, topo.Name))
			continue
		}
		existing[s.name] = c
		if s.volume == "" {
			continue
		}
		if owned, err := p.volumeOwned(ctx, topo.Name, s.volume); err != nil {
			return nil, err
		} else if !owned {
			problems = append(problems, fmt.Sprintf("volume %q exists and was not created by pgha for cluster %q", s.volume, topo.Name))
		}
	}
	nw, err := p.Docker.NetworkInspect(ctx, topo.NetworkName(), network.InspectOptions{})
	switch {
	case client.IsErrNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("inspecting network %s: %w", topo.NetworkName(), err)
	case nw.Labels[topology.LabelCluster] != topo.Name:
		problems = append(problems, fmt.Sprintf("network %q exists and was not created by pgha for cluster %q; remove it or choose another cluster name with --name", topo.NetworkName(), topo.Name))
	}

	// Ports held by the cluster's own running containers are in use by design.
	held := map[int]bool{}
	for _, s := range specs {
		if existing[s.name].Running() {
			for _, bs := range s.host.PortBindings {
				for _, b := range bs {
					n, _ := strconv.Atoi(b.HostPort)
					held[n] = true
				}
			}
		}
	}
	kind := ""
	for _, s := range specs {
		if s.role == topology.RoleObjectStore {
			kind = s.node
		}
	}
	for _, hp := range topo.HostPorts(kind) {
		if held[hp.Port] {
			continue
		}
		if err := portFree(hp.Port); err != nil {
			problems = append(problems, fmt.Sprintf("host port %s is already in use on 127.0.0.1: %v; free it or move the cluster with --port-offset", hp, err))
		}
	}
	if len(problems) > 0 {
		return nil, joinProblems(fmt.Sprintf("cannot create cluster %q (nothing was changed)", topo.Name), problems)
	}
	return existing, nil
}

// portFree says whether a TCP port can be bound on the loopback address.
func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// volumeOwned says whether a volume is absent or belongs to the cluster.
func (p *Provisioner) volumeOwned(ctx context.Context, cluster, name string) (bool, error) {
	v, err := p.Docker.VolumeInspect(ctx, name)
	if client.IsErrNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspecting volume %s: %w", name, err)
	}
	return v.Labels[topology.LabelCluster] == cluster, nil
}
