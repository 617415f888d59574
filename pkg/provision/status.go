package provision

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/pgha/pgha/pkg/verify"
)

// NodeStatus is one row of the cluster summary.
type NodeStatus struct {
	Service   string   `json:"service"` // etcd, patroni, objectstore
	Node      string   `json:"node"`
	Container string   `json:"container"`
	Image     string   `json:"image"`
	Role      string   `json:"role"` // primary/replica, leader/member, s3
	Ports     []string `json:"ports"`
	State     string   `json:"state"`  // the engine's state, or missing
	Health    string   `json:"health"` // what the service itself says
	Healthy   bool     `json:"healthy"`
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
func Status(ctx context.Context, docker *client.Client, name string) (ClusterStatus, error) {
	topo, err := FindCluster(ctx, docker, name)
	if err != nil {
		return ClusterStatus{}, err
	}
	p := &Provisioner{Docker: docker}
	st := ClusterStatus{Name: name, Network: topo.NetworkName(), Problems: []string{}}
	if _, err := docker.NetworkInspect(ctx, topo.NetworkName(), network.InspectOptions{}); err != nil {
		st.Problems = append(st.Problems, fmt.Sprintf("network %s is missing", topo.NetworkName()))
	}
	kind, err := p.storeKindOf(ctx, topo)
	if err != nil {
		return st, err
	}
	if kind == "" {
		kind = topology.StoreVersityGW
	}

	add := func(service, node, role string, ports ...string) *NodeStatus {
		st.Nodes = append(st.Nodes, NodeStatus{Service: service, Node: node, Container: topo.ContainerName(node), Role: role, Ports: append([]string{}, ports...)})
		return &st.Nodes[len(st.Nodes)-1]
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
	if topo.Guard {
		add(topology.RoleGuard, topology.GuardNode, "fencing")
	}

	for i := range st.Nodes {
		c, err := p.inspect(ctx, name, st.Nodes[i].Container)
		if err != nil {
			return st, err
		}
		st.Nodes[i].Image, st.Nodes[i].State = c.Image, c.Describe()
		switch {
		case st.Nodes[i].State == StateMissing:
			st.Problems = append(st.Problems, fmt.Sprintf("container %s is missing", c.Name))
		case c.State == "exited":
			st.Problems = append(st.Problems, fmt.Sprintf("container %s has exited with code %d", c.Name, c.ExitCode))
		case !c.Running():
			st.Problems = append(st.Problems, fmt.Sprintf("container %s is %s", c.Name, c.State))
		}
	}
	probeHealth(ctx, topo, kind, &st)
	if topo.Guard {
		g, err := GuardStatus(ctx, docker, topo)
		if err != nil {
			return st, err
		}
		st.Guard = &g
		n := &st.Nodes[len(st.Nodes)-1]
		n.Health, n.Healthy = g.Health(), g.Watching
		if n.State == "running" && !g.Watching {
			st.Problems = append(st.Problems, fmt.Sprintf("%s: not watching the engine's events (see `docker logs %s`)", g.Container, g.Container))
		}
	}
	return st, nil
}

func portMap(host, ctr int) string { return fmt.Sprintf("127.0.0.1:%d->%d", host, ctr) }

// probeHealth asks each running service about itself, in parallel, briefly.
func probeHealth(ctx context.Context, topo topology.Cluster, kind string, st *ClusterStatus) {
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
		if n.State != "running" || n.Service == topology.RoleGuard {
			n.Health = "-"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch n.Service {
			case topology.RoleEtcd:
				probeEtcd(ctx, topo, n)
			case topology.RolePatroni:
				node, _ := topo.PatroniNode(n.Node)
				ps, err := verify.GetPatroni(ctx, node.RESTPort)
				if err != nil {
					n.Health = "REST API not answering"
					break
				}
				n.Role = ps.Role
				n.Health = ps.State
				if ps.Role == verify.RoleReplica && ps.ReplicationState != "" {
					n.Health = ps.ReplicationState
				}
				n.Healthy = ps.Leading() || ps.Streaming()
			case topology.RoleObjectStore:
				probeStore(ctx, topo, n)
			}
			if !n.Healthy {
				problem("%s: %s", n.Container, n.Health)
			}
		}()
	}
	wg.Wait()
	sort.Strings(st.Problems)
}

func probeEtcd(ctx context.Context, topo topology.Cluster, n *NodeStatus) {
	var endpoint string
	for _, e := range topo.Etcd {
		if e.Name == n.Node {
			endpoint = e.HostEndpoint()
		}
	}
	cli, err := verify.NewEtcdClient([]string{endpoint})
	if err != nil {
		n.Health = err.Error()
		return
	}
	defer cli.Close()
	ms := verify.EtcdStatus(ctx, cli)
	if len(ms) == 0 || ms[0].Err != nil {
		n.Health = "unhealthy"
		return
	}
	n.Health, n.Healthy = "healthy", true
	if ms[0].IsLeader {
		n.Role = "leader"
	}
}

func probeStore(ctx context.Context, topo topology.Cluster, n *NodeStatus) {
	store, err := secrets.For(topo.Name)
	if err != nil {
		n.Health = err.Error()
		return
	}
	sec, err := store.Load()
	if err != nil {
		n.Health = "secrets unavailable"
		return
	}
	ca, err := store.CertPool()
	if err != nil {
		n.Health = "CA unavailable"
		return
	}
	s3, err := verify.NewS3Client(topo.ObjectStore.APIPort, sec.S3AccessKey, sec.S3SecretKey, ca)
	if err != nil {
		n.Health = err.Error()
		return
	}
	ok, err := s3.BucketExists(ctx, topo.ObjectStore.Bucket)
	switch {
	case err != nil:
		n.Health = "S3 request failed"
	case !ok:
		n.Health = "bucket " + topo.ObjectStore.Bucket + " missing"
	default:
		n.Health, n.Healthy = "healthy", true
	}
}
