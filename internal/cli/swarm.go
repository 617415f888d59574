package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/hosts"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
)

// Where a swarm cluster is: either the engine pgha talks to is a swarm
// manager (a real swarm: each node's own engine is a docker context named
// like the node), or it runs test hosts (`pgha hosts create`), whose engines
// pgha reaches through their sockets.

// swarmOnHosts is the backend of the swarm of test hosts with prefix.
func (a *app) swarmOnHosts(ctx context.Context, outer *engine.Engine, prefix string, p progress.Progress) (*cluster.Swarm, error) {
	sw, err := hosts.Inspect(ctx, outer.API, prefix)
	if err != nil {
		return nil, err
	}
	nodes := map[string]*engine.Engine{}
	var manager *engine.Engine
	for _, h := range sw.Hosts {
		cli, err := client.NewClientWithOpts(client.WithHost(h.Socket), client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("test host %s: %w", h.Name, err)
		}
		eng := engine.New(cli)
		eng.Endpoint.Host = h.Socket
		nodes[h.Name] = eng
		if manager == nil && h.SwarmRole == "manager" && h.State == "running" {
			if _, err := cli.Ping(ctx); err == nil {
				manager = eng
			}
		}
	}
	if manager == nil {
		return nil, fmt.Errorf("test hosts %s: no manager answers; start them with `pgha hosts create --prefix %s`", prefix, prefix)
	}
	s := cluster.NewSwarm(manager, nodes, outer, hosts.EngineSocketInHost, p)
	s.HostsPrefix = prefix
	s.Load = func(ctx context.Context, refs []string) error {
		return hosts.LoadImages(ctx, outer.API, sw.Hosts, refs)
	}
	return s, nil
}

// swarmOnManager is the backend of the swarm that eng manages; each node's
// engine is the docker context of its name.
func (a *app) swarmOnManager(ctx context.Context, eng *engine.Engine, p progress.Progress) (*cluster.Swarm, error) {
	list, err := cluster.SwarmNodes(ctx, eng)
	if err != nil {
		return nil, err
	}
	nodes := map[string]*engine.Engine{}
	for _, n := range list {
		ep, err := engine.Locate(n.Hostname)
		if err != nil {
			continue // commands that need this node's engine say so
		}
		if ne, err := engine.Connect(ctx, ep); err == nil {
			nodes[n.Hostname] = ne
		}
	}
	return cluster.NewSwarm(eng, nodes, nil, "/var/run/docker.sock", p), nil
}

// isManager says whether the engine is a swarm manager.
func isManager(ctx context.Context, eng *engine.Engine) bool {
	info, err := eng.API.Info(ctx)
	return err == nil && info.Swarm.ControlAvailable
}

// swarmFor is the swarm `pgha up --swarm` deploys on: the engine itself
// when it is a manager, else the test hosts (the only ones, or --hosts).
func (a *app) swarmFor(ctx context.Context, prefix string, p progress.Progress) (*cluster.Swarm, error) {
	eng, err := a.engine(ctx)
	if err != nil {
		return nil, err
	}
	if prefix == "" && isManager(ctx, eng) {
		return a.swarmOnManager(ctx, eng, p)
	}
	if prefix == "" {
		prefixes, err := hosts.List(ctx, eng.API)
		if err != nil {
			return nil, err
		}
		switch len(prefixes) {
		case 0:
			return nil, errors.New("--swarm needs a swarm: point DOCKER_HOST (or --context) at a swarm manager, or make test hosts with `pgha hosts create`")
		case 1:
			prefix = prefixes[0]
		default:
			return nil, fmt.Errorf("several sets of test hosts on this engine (%s): say which with --hosts", strings.Join(prefixes, ", "))
		}
	}
	return a.swarmOnHosts(ctx, eng, prefix, p)
}

// findSwarm looks for a cluster on the swarms pgha can see from the engine:
// the engine itself when it manages a swarm, else each set of test hosts.
// It returns nil when none has it.
func (a *app) findSwarm(ctx context.Context, eng *engine.Engine, name string, p progress.Progress) (*cluster.Swarm, topology.Cluster, error) {
	prefixes, err := hosts.List(ctx, eng.API)
	if err != nil {
		return nil, topology.Cluster{}, err
	}
	for _, prefix := range prefixes {
		s, err := a.swarmOnHosts(ctx, eng, prefix, p)
		if err != nil {
			continue
		}
		topo, err := s.Find(ctx, name)
		if err == nil {
			return s, topo, nil
		}
	}
	return nil, topology.Cluster{}, nil
}
