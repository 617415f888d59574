package cluster

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// NodeStatus is one row of the cluster summary.
type NodeStatus struct {
	Service   string `json:"service"` // etcd, patroni, objectstore, guard, router
	Node      string `json:"node"`
	Container string `json:"container"`
	// Host is the swarm node that runs it (on a swarm only).
	Host    string   `json:"host,omitempty"`
	Image   string   `json:"image"`
	Role    string   `json:"role"` // primary/replica, leader/member, s3
	Ports   []string `json:"ports"`
	State   string   `json:"state"`  // the engine's state, or missing
	Health  string   `json:"health"` // what the service itself says
	Healthy bool     `json:"healthy"`
}

// ClusterStatus is the whole summary.
type ClusterStatus struct {
	Name    string       `json:"name"`
	Network string       `json:"network"`
	Nodes   []NodeStatus `json:"nodes"`
	// Guard is the fencing guard, when the cluster has one.
	Guard *GuardState `json:"guard,omitempty"`
	// Problems lists missing or stopped containers and unhealthy services.
	Problems []string `json:"problems"`
}

// Status reports every container the cluster's topology expects: whether it
// exists and runs, and what the service inside says about itself.
func (d *Docker) Status(ctx context.Context, name string) (ClusterStatus, error) {
	topo, err := d.Find(ctx, name)
	if err != nil {
		return ClusterStatus{}, err
	}
	st := ClusterStatus{Name: name, Network: topo.NetworkName(), Problems: []string{}}
	if _, err := d.Engine.API.NetworkInspect(ctx, topo.NetworkName(), network.InspectOptions{}); err != nil {
		st.Problems = append(st.Problems, fmt.Sprintf("network %s is missing", topo.NetworkName()))
	}
	kind, err := d.StoreKind(ctx, topo)
	if err != nil {
		return st, err
	}
	if kind == "" {
		kind = topology.StoreVersityGW
	}
	portMap := func(host, ctr int) string { return fmt.Sprintf("%s->%d", d.Engine.Addr(host), ctr) }

	add := func(service, node, role string, ports ...string) {
		st.Nodes = append(st.Nodes, NodeStatus{Service: service, Node: node, Container: topo.ContainerName(node), Role: role, Ports: append([]string{}, ports...)})
	}
	for _, e := range topo.Etcd {
		add(topology.RoleEtcd, e.Name, "member", portMap(e.ClientPort, topology.EtcdClientPort))
	}
	for _, n := range topo.Patroni {
		add(topology.RolePatroni, n.Name, "", portMap(n.PGPort, topology.PostgresPort), portMap(n.RESTPort, topology.PatroniAPIPort))
	}
	storePorts := []string{portMap(topo.ObjectStore.APIPort, topology.S3APIPort)}
	if kind == topology.StoreMinIO {
		storePorts = append(storePorts, portMap(topo.ObjectStore.ConsolePort, topology.S3ConsolePort))
	}
	add(topology.RoleObjectStore, kind, "s3", storePorts...)
	if topo.Router {
		add(topology.RoleRouter, topology.RouterNode, "haproxy", portMap(topo.RouterPorts.Primary, topology.RouterPrimaryPort),
			portMap(topo.RouterPorts.Replicas, topology.RouterReplicaPort), portMap(topo.RouterPorts.Stats, topology.RouterStatsPort))
	}
	if topo.Guard {
		add(topology.RoleGuard, topology.GuardNode, "fencing")
		add(topology.RoleGuard, topology.GuardProxyNode, "engine API filter")
	}

	for i := range st.Nodes {
		n := &st.Nodes[i]
		c, err := d.Member(ctx, topo, n.Node)
		if err != nil {
			return st, err
		}
		n.Image, n.State, n.Host = c.Image, c.Describe(), c.Host
		switch {
		case n.State == string(engine.StateMissing):
			st.Problems = append(st.Problems, fmt.Sprintf("container %s is missing", c.Name))
		case c.State == container.StateExited:
			st.Problems = append(st.Problems, fmt.Sprintf("container %s has exited with code %d", c.Name, c.ExitCode))
		case !c.Running():
			st.Problems = append(st.Problems, fmt.Sprintf("container %s is %s", c.Name, c.State))
		case !c.OnNetwork(topo.NetworkName()):
			st.Problems = append(st.Problems, fmt.Sprintf("container %s is cut off the network %s; `pgha up --name %s` joins it again", c.Name, topo.NetworkName(), name))
		}
	}
	creds := clients.Credentials{}
	if store, err := secrets.For(name); err == nil {
		creds, _ = clients.CredentialsFrom(store)
	}
	probeHealth(ctx, d.Access(topo, creds), &st)
	if topo.Guard {
		g, err := d.GuardStatus(ctx, topo)
		if err != nil {
			return st, err
		}
		st.Guard = &g
		n, proxy := &st.Nodes[len(st.Nodes)-2], &st.Nodes[len(st.Nodes)-1]
		n.Health, n.Healthy = g.Health(), g.Watching
		if proxy.State == string(container.StateRunning) && g.Watching {
			// The guard watches through it: it serves.
			proxy.Health, proxy.Healthy = "serving the guard read-only", true
		}
		if n.State == string(container.StateRunning) && !g.Watching {
			st.Problems = append(st.Problems, fmt.Sprintf("%s: not watching the engine's events (see `docker logs %s`)", g.Container, g.Container))
		}
	}
	return st, nil
}

// probeHealth asks each running service about itself, in parallel, briefly.
func probeHealth(ctx context.Context, acc clients.Access, st *ClusterStatus) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	problem := func(format string, a ...any) {
		mu.Lock()
		st.Problems = append(st.Problems, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if n.State != string(container.StateRunning) || n.Service == topology.RoleGuard {
			n.Health = "-"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch n.Service {
			case topology.RoleEtcd:
				probeEtcd(ctx, acc, n)
			case topology.RolePatroni:
				ps, err := acc.Patroni(ctx, n.Node)
				if err != nil {
					n.Health = "REST API not answering"
					break
				}
				n.Role = ps.Role
				n.Health = ps.State
				if ps.Role == clients.RoleReplica && ps.ReplicationState != "" {
					n.Health = ps.ReplicationState
				}
				n.Healthy = ps.Leading() || ps.Streaming()
			case topology.RoleObjectStore:
				probeStore(ctx, acc, n)
			case topology.RoleRouter:
				probeRouter(ctx, acc, n)
			}
			if !n.Healthy {
				problem("%s: %s", n.Container, n.Health)
			}
		}()
	}
	wg.Wait()
	sort.Strings(st.Problems)
}

func probeEtcd(ctx context.Context, acc clients.Access, n *NodeStatus) {
	for _, e := range acc.Topo.Etcd {
		if e.Name != n.Node {
			continue
		}
		cli, err := clients.NewEtcd([]string{acc.EtcdEndpoint(e)}, acc.EtcdLogin())
		if err != nil {
			n.Health = "unhealthy: " + clients.ShortErr(err)
			return
		}
		defer cli.Close()
		ms := clients.EtcdStatus(ctx, cli)
		if len(ms) == 0 || ms[0].Err != nil {
			n.Health = "unhealthy"
			return
		}
		n.Health, n.Healthy = "healthy", true
		if ms[0].IsLeader {
			n.Role = "leader"
		}
	}
}

func probeStore(ctx context.Context, acc clients.Access, n *NodeStatus) {
	if acc.Creds.CA == nil {
		n.Health = "secrets unavailable"
		return
	}
	s3, err := acc.S3()
	if err != nil {
		n.Health = err.Error()
		return
	}
	ok, err := s3.BucketExists(ctx, acc.Topo.ObjectStore.Bucket)
	switch {
	case err != nil:
		n.Health = "S3 request failed"
	case !ok:
		n.Health = "bucket " + acc.Topo.ObjectStore.Bucket + " missing"
	default:
		n.Health, n.Healthy = "healthy", true
	}
}
