package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
)

// Swarm is the backend of a Docker Swarm: every member is a service of one
// replica pinned to a node (named like the member's container on one engine),
// on an attachable overlay network, with its credentials as Swarm secrets.
// The manager creates services, networks and secrets; what happens inside a
// member (exec, logs, a kill) goes through the engine of the node that runs
// its task, since containers are local to each engine. The guard runs as a
// plain container on every node's engine: engine events are local too.
type Swarm struct {
	*Docker // the manager's engine
	// Nodes are each node's own engine, by host name (the test hosts'
	// sockets, or docker contexts named like the nodes).
	Nodes map[string]*engine.Engine
	// Outer is the engine that runs the test hosts, when the swarm is made
	// of them (host faults need it); nil for a swarm of real machines.
	Outer *engine.Engine
	// HostsPrefix names the test hosts when the swarm is made of them.
	HostsPrefix string
	// GuardSocket is the engine's socket as each node sees it (what the
	// guard's proxy mounts).
	GuardSocket string

	// Load puts images into the nodes that lack them (test hosts: like
	// kind load docker-image); nil on a real swarm, whose nodes must hold
	// them already.
	Load func(ctx context.Context, refs []string) error

	mu        sync.Mutex
	hostnames map[string]string // node ID → host name
}

var _ Backend = (*Swarm)(nil)

// NewSwarm is the backend of the swarm that manager manages.
func NewSwarm(manager *engine.Engine, nodes map[string]*engine.Engine, outer *engine.Engine, guardSocket string, p progress.Progress) *Swarm {
	s := &Swarm{Docker: NewDocker(manager, p), Nodes: nodes, Outer: outer, GuardSocket: guardSocket, hostnames: map[string]string{}}
	s.Docker.swarm = s
	return s
}

// SwarmNodes lists the swarm's nodes that can run tasks (ready, active).
func SwarmNodes(ctx context.Context, manager *engine.Engine) ([]topology.SwarmNode, error) {
	nodes, err := manager.API.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the swarm's nodes (is %s a swarm manager?): %w", manager.Endpoint.Host, err)
	}
	var out []topology.SwarmNode
	for _, n := range nodes {
		if n.Status.State != swarm.NodeStateReady || n.Spec.Availability != swarm.NodeAvailabilityActive {
			continue
		}
		out = append(out, topology.SwarmNode{Hostname: n.Description.Hostname, Labels: n.Spec.Labels})
	}
	return out, nil
}

// node is the engine of a node, by host name.
func (s *Swarm) node(host string) (*engine.Engine, error) {
	if e := s.Nodes[host]; e != nil {
		return e, nil
	}
	known := make([]string, 0, len(s.Nodes))
	for h := range s.Nodes {
		known = append(known, h)
	}
	sort.Strings(known)
	return nil, fmt.Errorf("no engine known for swarm node %s (known: %s): pgha reaches a member's container through its own node's engine; make a docker context named %s (docker context create %s --docker host=ssh://USER@%s)",
		host, strings.Join(known, ", "), host, host, host)
}

// task is where a member's service runs now: the node and the task's
// container (empty when the service has no task with a container).
type task struct {
	ID        string
	Host      string
	Container string
	State     swarm.TaskState
	Err       string
	Desired   swarm.TaskState
}

// currentTask is the service's newest task; false when the service or its
// tasks do not exist.
func (s *Swarm) currentTask(ctx context.Context, service string) (task, bool, error) {
	svc, _, err := s.Engine.API.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if engine.IsNotFound(err) {
		return task{}, false, nil
	}
	if err != nil {
		return task{}, false, fmt.Errorf("inspecting service %s: %w", service, err)
	}
	ts, err := s.Engine.API.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
	if err != nil {
		return task{}, false, fmt.Errorf("listing the tasks of service %s: %w", service, err)
	}
	if len(ts) == 0 {
		return task{}, false, nil
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].CreatedAt.After(ts[j].CreatedAt) })
	t := ts[0]
	host, err := s.hostname(ctx, t.NodeID)
	if err != nil {
		return task{}, false, err
	}
	out := task{ID: t.ID, Host: host, State: t.Status.State, Err: t.Status.Err, Desired: t.DesiredState}
	if t.Status.ContainerStatus != nil {
		out.Container = t.Status.ContainerStatus.ContainerID
	}
	return out, true, nil
}

// hostname is a node's host name, by ID (cached: it does not change).
func (s *Swarm) hostname(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	s.mu.Lock()
	h, ok := s.hostnames[id]
	s.mu.Unlock()
	if ok {
		return h, nil
	}
	n, _, err := s.Engine.API.NodeInspectWithRaw(ctx, id)
	if err != nil {
		return "", fmt.Errorf("inspecting swarm node %s: %w", id, err)
	}
	s.mu.Lock()
	s.hostnames[id] = n.Description.Hostname
	s.mu.Unlock()
	return n.Description.Hostname, nil
}

// locate is the engine and container of a member's current task.
func (s *Swarm) locate(ctx context.Context, topo topology.Cluster, node string) (*engine.Engine, string, error) {
	t, ok, err := s.currentTask(ctx, topo.ContainerName(node))
	if err != nil {
		return nil, "", err
	}
	if !ok || t.Host == "" {
		return nil, "", fmt.Errorf("%s has no task on the swarm (service %s)", node, topo.ContainerName(node))
	}
	eng, err := s.node(t.Host)
	if err != nil {
		return nil, "", err
	}
	if t.Container == "" {
		return eng, topo.ContainerName(node), nil
	}
	return eng, t.Container, nil
}

// locateTimeout bounds the manager's answers where the seam has no context.
const locateTimeout = 10 * time.Second

// Where is the engine of the node running the member's task, and its
// container there. When the swarm cannot say, the manager's engine and the
// service's name are returned, so that the caller's own call fails with
// "No such container".
func (s *Swarm) Where(topo topology.Cluster, node string) (*engine.Engine, string) {
	ctx, cancel := context.WithTimeout(context.Background(), locateTimeout)
	defer cancel()
	eng, name, err := s.locate(ctx, topo, node)
	if err != nil {
		return s.Engine, topo.ContainerName(node)
	}
	return eng, name
}

// Member is what the engine of its node says about a member's container,
// named like the service.
func (s *Swarm) Member(ctx context.Context, topo topology.Cluster, node string) (engine.Container, error) {
	name := topo.ContainerName(node)
	if isGuardNode(node) {
		return s.guardMember(ctx, topo, node)
	}
	t, ok, err := s.currentTask(ctx, name)
	if err != nil {
		return engine.Container{}, err
	}
	if !ok || t.Host == "" || t.Container == "" {
		return engine.Container{Name: name, Host: t.Host, State: engine.StateMissing}, nil
	}
	eng, err := s.node(t.Host)
	if err != nil {
		return engine.Container{}, err
	}
	c, err := eng.Inspect(ctx, topo.Name, t.Container)
	c.Name, c.Host = name, t.Host
	if err == nil && !c.Ours {
		c.State = engine.StateMissing
	}
	return c, err
}

// Access: the test hosts publish every port on this machine's loopback; the
// nodes of a real swarm publish them on their own addresses.
func (s *Swarm) Access(topo topology.Cluster, creds clients.Credentials) clients.Access {
	if s.Outer != nil {
		return clients.Access{Topo: topo, Host: "127.0.0.1", Creds: creds}
	}
	acc := clients.Access{Topo: topo, Host: s.Engine.Endpoint.PublishHost, Creds: creds, PortHosts: map[int]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), locateTimeout)
	defer cancel()
	places, addrs := map[string]topology.Placement{}, map[string]string{}
	nodes, err := s.Engine.API.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return acc
	}
	for _, n := range nodes {
		addrs[n.Description.Hostname] = n.Status.Addr
	}
	kind, _ := s.StoreKind(ctx, topo)
	members := append(append(topo.EtcdNames(), topo.PatroniNames()...), kind, topology.RouterNode)
	for _, m := range members {
		if t, ok, err := s.currentTask(ctx, topo.ContainerName(m)); err == nil && ok {
			places[m] = topology.Placement{Node: t.Host}
		}
	}
	for node, ports := range topo.PortsByNode(places, kind) {
		for _, p := range ports {
			acc.PortHosts[p] = addrs[node]
		}
	}
	return acc
}

// Isolate is not offered on a swarm: a member's container is attached to the
// overlay by its task, which the engine will not detach; host-partition and
// dcs-partition cut members off instead.
func (s *Swarm) Isolate(ctx context.Context, topo topology.Cluster, node string) error {
	return fmt.Errorf("the partition fault detaches a container from its network, which a swarm task does not allow; on a swarm use host-partition (the whole host) or dcs-partition")
}

// Rejoin: see Isolate.
func (s *Swarm) Rejoin(ctx context.Context, topo topology.Cluster, node string) error { return nil }

// StoreKind is the kind of the cluster's object store service.
func (s *Swarm) StoreKind(ctx context.Context, topo topology.Cluster) (string, error) {
	svcs, err := s.services(ctx, topo.Name)
	if err != nil {
		return "", err
	}
	for _, svc := range svcs {
		if svc.Spec.Labels[topology.LabelRole] == topology.RoleObjectStore {
			return svc.Spec.Labels[topology.LabelNode], nil
		}
	}
	return "", nil
}

// services lists the cluster's services.
func (s *Swarm) services(ctx context.Context, cluster string) ([]swarm.Service, error) {
	svcs, err := s.Engine.API.ServiceList(ctx, swarm.ServiceListOptions{Filters: engine.ClusterFilter(cluster)})
	if err != nil {
		return nil, fmt.Errorf("listing the services of cluster %s: %w", cluster, err)
	}
	return svcs, nil
}
