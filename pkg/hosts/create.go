package hosts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/pgha/pgha/pkg/engine"
)

// Swarm is a set of test hosts, as the outer engine shows them.
type Swarm struct {
	Prefix string `json:"prefix"`
	// Network is the bridge the hosts share on the outer engine.
	Network string `json:"network"`
	Hosts   []Host `json:"hosts"`
}

// Host is one Docker engine in a container.
type Host struct {
	// Name is the host name (h1, h2, …): the swarm node's hostname, for
	// constraints such as node.hostname==h3.
	Name  string `json:"name"`
	Index int    `json:"index"`
	// Container is the host's container on the outer engine (<prefix>-h1).
	Container string `json:"container"`
	// Socket is the inner engine's Docker host URL: unix:///…/docker.sock.
	Socket string `json:"socket"`
	// Address is the host's address on the shared bridge; the swarm
	// advertises it.
	Address string `json:"address"`
	// Ports are published on 127.0.0.1 with the same number inside.
	Ports []int `json:"ports"`
	// SwarmRole is manager or worker.
	SwarmRole string `json:"swarmRole"`
	// State is the container's state: running, exited, created….
	State string `json:"state"`
}

// Client connects to the host's inner engine over its unix socket, with API
// version negotiation. The caller closes it.
func (h Host) Client() (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.WithHost(h.Socket), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("host %s: a client for %s: %w", h.Name, h.Socket, err)
	}
	return c, nil
}

// Managers returns the hosts that are swarm managers.
func (s Swarm) Managers() []Host {
	var m []Host
	for _, h := range s.Hosts {
		if h.SwarmRole == "manager" {
			m = append(m, h)
		}
	}
	return m
}

// Host returns the host with the given name (h1…).
func (s Swarm) Host(name string) (Host, bool) {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// Create makes the hosts, waits until every inner engine answers, forms the
// swarm and loads the images. It completes a partial creation: what exists
// and carries the prefix's labels is kept (a stopped host is started), what
// is missing is made. progress, when set, gets one line per step.
func Create(ctx context.Context, api client.APIClient, opts Options, progress func(string)) (Swarm, error) {
	progress = orNop(progress)
	o, err := opts.withDefaults()
	if err != nil {
		return Swarm{}, fmt.Errorf("test hosts: %w", err)
	}
	if h := api.DaemonHost(); !strings.HasPrefix(h, "unix://") {
		return Swarm{}, fmt.Errorf("test hosts need the Docker engine of this machine, reached over its unix socket (the engine is %s): this machine talks to each inner engine through a socket in a directory it shares with the host's container", h)
	}
	if err := checkNoExtraHosts(ctx, api, o); err != nil {
		return Swarm{}, err
	}
	// Images to load must exist before anything is made.
	var missing []string
	for _, ref := range o.Images {
		if _, err := api.ImageInspect(ctx, ref); err != nil {
			missing = append(missing, ref)
		}
	}
	if len(missing) > 0 {
		return Swarm{}, fmt.Errorf("test hosts %s: the images to load are not on the engine: %s (build pgha's images with `pgha images build`)", o.Prefix, strings.Join(missing, ", "))
	}
	image := o.EngineImage
	if image == "" {
		if image, err = EnsureEngineImage(ctx, api, progress); err != nil {
			return Swarm{}, err
		}
	}

	start := time.Now()
	subnet, err := ensureNetwork(ctx, api, o)
	if err != nil {
		return Swarm{}, err
	}
	if err := checkPools(ctx, api, o); err != nil {
		return Swarm{}, err
	}
	caps := Capabilities
	for i := 1; i <= o.Count; i++ {
		addr, err := hostAddress(subnet, i)
		if err != nil {
			return Swarm{}, err
		}
		if caps, err = ensureHost(ctx, api, o, i, image, caps, addr, progress); err != nil {
			return Swarm{}, err
		}
	}
	progress(fmt.Sprintf("%d engine containers running: %s-h1..h%d on %s (%s)", o.Count, o.Prefix, o.Count, subnet, since(start)))

	sw, err := Inspect(ctx, api, o.Prefix)
	if err != nil {
		return sw, err
	}
	start = time.Now()
	if err := waitEngines(ctx, api, sw, time.Now().Add(o.ReadyTimeout)); err != nil {
		return sw, err
	}
	progress(fmt.Sprintf("%d inner engines answer on their sockets (%s)", len(sw.Hosts), since(start)))

	start = time.Now()
	if err := formSwarm(ctx, o, sw, progress); err != nil {
		return sw, err
	}
	progress(fmt.Sprintf("swarm ready: %d managers, %d workers, all nodes ready (%s)", managers(o.Count), o.Count-managers(o.Count), since(start)))

	if len(o.Images) > 0 {
		start = time.Now()
		if err := LoadImages(ctx, api, sw.Hosts, o.Images); err != nil {
			return sw, err
		}
		progress(fmt.Sprintf("images on every host: %s (%s)", strings.Join(o.Images, ", "), since(start)))
	}
	return sw, nil
}

// checkNoExtraHosts refuses to shrink a swarm: a host beyond Count would be
// left out of the result but not removed.
func checkNoExtraHosts(ctx context.Context, api client.APIClient, o Options) error {
	sw, err := Inspect(ctx, api, o.Prefix)
	if err != nil && !errors.Is(err, ErrNoHosts) {
		return err
	}
	for _, h := range sw.Hosts {
		if h.Index > o.Count {
			return fmt.Errorf("test hosts %s: host %s exists but only %d hosts were asked for: delete the hosts first (pgha hosts delete %s) to make fewer", o.Prefix, h.Name, o.Count, o.Prefix)
		}
	}
	return nil
}

// ensureNetwork makes the bridge the hosts share, on the first free /24 of
// the network pool, or checks that the existing one is the prefix's. It
// returns the subnet.
func ensureNetwork(ctx context.Context, api client.APIClient, o Options) (string, error) {
	name := NetworkName(o.Prefix)
	n, err := api.NetworkInspect(ctx, name, network.InspectOptions{})
	if err == nil {
		if n.Labels[LabelHosts] != o.Prefix {
			return "", fmt.Errorf("network %s exists and is not the network of test hosts %s (it lacks the label %s=%s): remove it or choose another prefix", name, o.Prefix, LabelHosts, o.Prefix)
		}
		if len(n.IPAM.Config) == 0 || n.IPAM.Config[0].Subnet == "" {
			return "", fmt.Errorf("network %s has no subnet of its own: delete the hosts (pgha hosts delete %s) and create them again", name, o.Prefix)
		}
		return n.IPAM.Config[0].Subnet, nil
	}
	if !engine.IsNotFound(err) {
		return "", fmt.Errorf("inspecting network %s: %w", name, err)
	}
	// Two creations at once may pick the same subnet: the engine refuses
	// the second, which then takes the next.
	for try := 0; ; try++ {
		used, err := engineSubnets(ctx, api)
		if err != nil {
			return "", err
		}
		subnet, err := pickSubnet(o.NetworkPool, append(used, o.AddressPool, o.SwarmAddressPool))
		if err != nil {
			return "", err
		}
		gateway, _ := subnetAddress(subnet, 1)
		// Anything else attached gets an address from the upper half, never
		// a stopped host's.
		upper, _ := subnetAddress(subnet, 128)
		_, err = api.NetworkCreate(ctx, name, network.CreateOptions{
			Driver: "bridge",
			Labels: labels(o, RoleNetwork, 0),
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gateway, IPRange: upper + "/25"}}},
		})
		if err == nil {
			return subnet, nil
		}
		if try < 3 && strings.Contains(err.Error(), "overlaps") {
			continue
		}
		return "", fmt.Errorf("creating network %s on %s: %w", name, subnet, err)
	}
}

// engineSubnets lists the subnets of the outer engine's networks.
func engineSubnets(ctx context.Context, api client.APIClient) ([]string, error) {
	nets, err := api.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the engine's networks: %w", err)
	}
	var subnets []string
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if c.Subnet != "" {
				subnets = append(subnets, c.Subnet)
			}
		}
	}
	return subnets, nil
}

// checkPools makes sure the inner engines' networks cannot collide with the
// outer engine's: a host whose docker0 or overlay took the subnet of an outer
// network could no longer reach that network.
func checkPools(ctx context.Context, api client.APIClient, o Options) error {
	nets, err := api.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the engine's networks: %w", err)
	}
	var errs []error
	for _, n := range nets {
		var subnets []string
		for _, c := range n.IPAM.Config {
			subnets = append(subnets, c.Subnet)
		}
		if n.Name == NetworkName(o.Prefix) {
			continue // its subnet was taken from the network pool, apart from the others
		}
		for what, pool := range map[string]string{"address pool": o.AddressPool, "swarm address pool": o.SwarmAddressPool} {
			if hits := overlapping(pool, subnets); len(hits) > 0 {
				errs = append(errs, fmt.Errorf("the inner engines' %s %s overlaps network %s (%s) of the outer engine: choose another pool", what, pool, n.Name, strings.Join(hits, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

// ensureHost makes host i's socket directory, volume and container, and
// starts it. It returns the capabilities the engine accepted, for the next.
func ensureHost(ctx context.Context, api client.APIClient, o Options, i int, image string, caps []string, address string, progress func(string)) ([]string, error) {
	name := ContainerName(o.Prefix, i)
	ct, err := api.ContainerInspect(ctx, name)
	switch {
	case err == nil:
		if ct.Config.Labels[LabelHosts] != o.Prefix || ct.Config.Labels[LabelRole] != RoleEngine {
			return caps, fmt.Errorf("container %s exists and is not host %s of test hosts %s (it lacks the label %s=%s): remove it or choose another prefix", name, HostName(i), o.Prefix, LabelHosts, o.Prefix)
		}
		have, want := publishedPorts(ct.HostConfig.PortBindings), slices.Sorted(slices.Values(o.Ports[i]))
		if !slices.Equal(have, want) {
			return caps, fmt.Errorf("host %s (container %s) publishes ports %v, and %v were asked for: a host's ports are fixed when it is made; delete the hosts (pgha hosts delete %s) and create them again", HostName(i), name, have, want, o.Prefix)
		}
		if dir := ct.Config.Labels[LabelSocketDir]; dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return caps, fmt.Errorf("host %s: socket directory: %w", HostName(i), err)
			}
		}
		if ct.State != nil && ct.State.Running {
			return caps, nil
		}
		progress(fmt.Sprintf("starting the stopped host %s (%s)", HostName(i), name))
		return caps, startHost(ctx, api, o, i)
	case !engine.IsNotFound(err):
		return caps, fmt.Errorf("inspecting container %s: %w", name, err)
	}

	if err := os.MkdirAll(SocketDir(o.StateDir, o.Prefix, i), 0o700); err != nil {
		return caps, fmt.Errorf("host %s: making its socket directory: %w", HostName(i), err)
	}
	vol := VolumeName(o.Prefix, i)
	v, err := api.VolumeCreate(ctx, volume.CreateOptions{Name: vol, Labels: labels(o, RoleData, i)})
	if err != nil {
		return caps, fmt.Errorf("host %s: creating volume %s: %w", HostName(i), vol, err)
	}
	if v.Labels[LabelHosts] != o.Prefix {
		return caps, fmt.Errorf("volume %s exists and is not the data of host %s of test hosts %s (it lacks the label %s=%s): remove it or choose another prefix", vol, HostName(i), o.Prefix, LabelHosts, o.Prefix)
	}
	for {
		cfg, hc, nc := engineSpec(o, i, image, caps, address)
		_, err = api.ContainerCreate(ctx, cfg, hc, nc, nil, name)
		// Docker before 23 does not know CAP_BPF and friends: ask without.
		if unknown := unknownCapability(err); unknown != "" && slices.Contains(caps, unknown) {
			caps = slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return c == unknown })
			continue
		}
		break
	}
	if err != nil {
		return caps, fmt.Errorf("host %s: creating container %s: %w", HostName(i), name, err)
	}
	return caps, startHost(ctx, api, o, i)
}

func startHost(ctx context.Context, api client.APIClient, o Options, i int) error {
	name := ContainerName(o.Prefix, i)
	if err := api.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		hint := "fix the cause and run create again, or delete the hosts (pgha hosts delete " + o.Prefix + ")"
		if strings.Contains(err.Error(), "port is already allocated") || strings.Contains(err.Error(), "address already in use") {
			hint = fmt.Sprintf("one of its ports %v is taken on 127.0.0.1: free it or plan other ports, after deleting the hosts (pgha hosts delete %s)", o.Ports[i], o.Prefix)
		}
		return fmt.Errorf("host %s: starting container %s: %w\n%s", HostName(i), name, err, hint)
	}
	return nil
}

// waitEngines waits until every inner engine answers a ping on its socket,
// and fails fast, with the container's last log lines, when one exits.
func waitEngines(ctx context.Context, api client.APIClient, sw Swarm, deadline time.Time) error {
	errs := make([]error, len(sw.Hosts))
	var wg sync.WaitGroup
	for k, h := range sw.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = waitEngine(ctx, api, sw.Prefix, h, deadline)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func waitEngine(ctx context.Context, api client.APIClient, prefix string, h Host, deadline time.Time) error {
	cli, err := h.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, last = cli.Ping(pctx)
		cancel()
		if last == nil {
			return nil
		}
		ct, err := api.ContainerInspect(ctx, h.Container)
		if err != nil {
			return fmt.Errorf("host %s: inspecting container %s: %w", h.Name, h.Container, err)
		}
		if ct.State != nil && !ct.State.Running && ct.State.Status != "created" {
			return fmt.Errorf("host %s: container %s is %s (exit code %d) and its engine never answered on %s\n--- last log lines of %s ---\n%s\nfix the cause and run create again, or delete the hosts (pgha hosts delete %s)",
				h.Name, h.Container, ct.State.Status, ct.State.ExitCode, h.Socket, h.Container, LogTail(ctx, api, h.Container, 20), prefix)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host %s: its engine did not answer on %s in time (last: %v)\n--- last log lines of %s ---\n%s\nthe machine may be busy: run create again to wait longer, or delete the hosts (pgha hosts delete %s)",
				h.Name, h.Socket, last, h.Container, LogTail(ctx, api, h.Container, 20), prefix)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// LogTail returns the last n lines of a container's log, or why not.
func LogTail(ctx context.Context, api client.APIClient, name string, n int) string {
	rc, err := api.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return strings.TrimRight(buf.String(), "\n")
}

// formSwarm makes the first host the swarm's first manager unless a manager
// exists, joins the other managers one at a time, then the workers, and
// waits until the swarm reports every node ready and every manager reachable.
func formSwarm(ctx context.Context, o Options, sw Swarm, progress func(string)) error {
	type node struct {
		Host
		cli  *client.Client
		info swarm.Info
	}
	nodes := make([]node, len(sw.Hosts))
	for k, h := range sw.Hosts {
		cli, err := h.Client()
		if err != nil {
			return err
		}
		defer cli.Close()
		info, err := cli.Info(ctx)
		if err != nil {
			return fmt.Errorf("host %s: asking its engine for its swarm state: %w", h.Name, err)
		}
		nodes[k] = node{Host: h, cli: cli, info: info.Swarm}
	}

	// The leader: an active manager, else a new swarm on the first host.
	var leader *node
	for k := range nodes {
		if nodes[k].SwarmRole == "manager" && nodes[k].info.LocalNodeState == swarm.LocalNodeStateActive && nodes[k].info.ControlAvailable {
			leader = &nodes[k]
			break
		}
	}
	if leader == nil {
		for _, n := range nodes {
			if n.info.LocalNodeState != swarm.LocalNodeStateInactive {
				return fmt.Errorf("host %s is in swarm state %q (%s) but no manager is active: delete the hosts (pgha hosts delete %s) and create them again", n.Name, n.info.LocalNodeState, n.info.Error, o.Prefix)
			}
		}
		leader = &nodes[0]
		_, err := leader.cli.SwarmInit(ctx, swarm.InitRequest{
			ListenAddr:      fmt.Sprintf("0.0.0.0:%d", SwarmPort),
			AdvertiseAddr:   leader.Address,
			DefaultAddrPool: []string{o.SwarmAddressPool},
			SubnetSize:      PoolSubnetSize,
			Spec:            swarm.Spec{Annotations: swarm.Annotations{Labels: map[string]string{LabelHosts: o.Prefix}}},
		})
		if err != nil {
			return fmt.Errorf("host %s: swarm init --advertise-addr %s: %w", leader.Name, leader.Address, err)
		}
		progress(fmt.Sprintf("swarm initialised on %s (%s)", leader.Name, leader.Address))
	}
	inspect, err := leader.cli.SwarmInspect(ctx)
	if err != nil {
		return fmt.Errorf("host %s: swarm inspect: %w", leader.Name, err)
	}
	for k := range nodes {
		n := &nodes[k]
		if n == leader {
			continue
		}
		switch n.info.LocalNodeState {
		case swarm.LocalNodeStateActive, swarm.LocalNodeStatePending:
			if n.info.Cluster != nil && n.info.Cluster.ID != inspect.ID {
				return fmt.Errorf("host %s belongs to another swarm (%s, not %s): delete the hosts (pgha hosts delete %s) and create them again", n.Name, n.info.Cluster.ID, inspect.ID, o.Prefix)
			}
			continue
		case swarm.LocalNodeStateInactive:
		default:
			return fmt.Errorf("host %s is in swarm state %q (%s): delete the hosts (pgha hosts delete %s) and create them again", n.Name, n.info.LocalNodeState, n.info.Error, o.Prefix)
		}
		token := inspect.JoinTokens.Worker
		if n.SwarmRole == "manager" {
			token = inspect.JoinTokens.Manager
		}
		err := n.cli.SwarmJoin(ctx, swarm.JoinRequest{
			ListenAddr:    fmt.Sprintf("0.0.0.0:%d", SwarmPort),
			AdvertiseAddr: n.Address,
			RemoteAddrs:   []string{fmt.Sprintf("%s:%d", leader.Address, SwarmPort)},
			JoinToken:     token,
		})
		if err != nil {
			return fmt.Errorf("host %s: swarm join as %s via %s:%d: %w", n.Name, n.SwarmRole, leader.Address, SwarmPort, err)
		}
	}
	clients := map[string]client.APIClient{}
	for _, n := range nodes {
		clients[n.Name] = n.cli
	}
	return waitSwarm(ctx, leader.cli, clients, sw, time.Now().Add(o.ReadyTimeout))
}

// waitSwarm waits until the swarm lists every host ready, with every manager
// reachable, and every host's engine says it is an active node (the list
// alone may still show a host that just restarted as it was).
func waitSwarm(ctx context.Context, cli client.APIClient, clients map[string]client.APIClient, sw Swarm, deadline time.Time) error {
	for {
		missing, err := swarmNotReady(ctx, cli, clients, sw)
		if err == nil && len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("the swarm of test hosts %s is not ready: %w", sw.Prefix, err)
			}
			return fmt.Errorf("the swarm of test hosts %s is not ready: %s\nsee the engines' logs (docker logs %s-h1 …); run create again to wait longer, or delete the hosts", sw.Prefix, strings.Join(missing, "; "), sw.Prefix)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// swarmNotReady says which hosts the swarm does not yet list as ready (and
// reachable, for managers).
func swarmNotReady(ctx context.Context, cli client.APIClient, clients map[string]client.APIClient, sw Swarm) ([]string, error) {
	list, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, err
	}
	byName := map[string]swarm.Node{}
	for _, n := range list {
		// A host that rejoined leaves its old node behind, down: prefer a ready one.
		if old, ok := byName[n.Description.Hostname]; ok && old.Status.State == swarm.NodeStateReady {
			continue
		}
		byName[n.Description.Hostname] = n
	}
	var missing []string
	for _, h := range sw.Hosts {
		n, ok := byName[h.Name]
		switch {
		case !ok:
			missing = append(missing, h.Name+" not in the swarm")
		case n.Status.State != swarm.NodeStateReady:
			missing = append(missing, fmt.Sprintf("%s %s %s", h.Name, n.Status.State, n.Status.Message))
		case h.SwarmRole == "manager" && (n.ManagerStatus == nil || n.ManagerStatus.Reachability != swarm.ReachabilityReachable):
			missing = append(missing, h.Name+" not a reachable manager")
		default:
			if c := clients[h.Name]; c != nil {
				info, err := c.Info(ctx)
				switch {
				case err != nil:
					missing = append(missing, fmt.Sprintf("%s: %v", h.Name, err))
				case info.Swarm.LocalNodeState != swarm.LocalNodeStateActive:
					missing = append(missing, fmt.Sprintf("%s says it is %s %s", h.Name, info.Swarm.LocalNodeState, info.Swarm.Error))
				case h.SwarmRole == "manager" && !info.Swarm.ControlAvailable:
					missing = append(missing, h.Name+" says it is no manager")
				}
			}
		}
	}
	sort.Strings(missing)
	return missing, nil
}
