package hosts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/faults"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
)

// RoleCut is the role of the helper container that holds a host cut off the
// others (pgha's network-fault helper in the host's network namespace).
const RoleCut = "hosts-cut"

// Controller kills, starts, cuts and joins test hosts: host-level faults.
// Outer is this machine's engine, the one that runs the hosts' containers.
//
// Kill is SIGKILL of a host's container: its engine and everything it runs
// die at once, and no engine reports their deaths. Cut runs pgha's
// network-fault helper on the outer engine in the host container's network
// namespace (NetworkMode container:<prefix>-hN, NET_ADMIN only), dropping
// every packet to or from the other hosts' addresses on the shared bridge:
// swarm control (2377), gossip (7946) and overlay VXLAN (4789/udp) all
// leave from there. The published ports come in from the bridge's gateway
// (Docker's proxy), which is kept, so this machine still reaches them. The
// cut lifts itself after Deadline should the caller die.
type Controller struct {
	Outer  client.APIClient
	Prefix string
	// HelperImage is the network-fault helper's image on Outer; empty finds
	// it there, or builds it, in Cut (EnsureHelper does it beforehand).
	HelperImage string
	// Deadline is how long a cut lifts itself after, should the process
	// that cut die first (0: 10 minutes).
	Deadline time.Duration
	// ReadyTimeout bounds Start's waits (0: DefaultReadyTimeout).
	ReadyTimeout time.Duration
}

// EnsureHelper finds pgha's network-fault helper image on the outer engine,
// building it when missing (about 20–50 s, once), and keeps it in
// HelperImage, so that a later Cut starts at once. p may be nil.
func (c *Controller) EnsureHelper(ctx context.Context, p progress.Progress) error {
	if c.HelperImage != "" {
		return nil
	}
	if p == nil {
		p = progress.Discard{}
	}
	im, err := (&images.Supplier{Engine: engine.New(c.Outer), Progress: p}).Netfault(ctx)
	if err != nil {
		return fmt.Errorf("the network-fault helper image: %w", err)
	}
	c.HelperImage = im.Ref
	return nil
}

// managerTimeout bounds one question to one manager: a manager cut off the
// others has no quorum and hangs.
const managerTimeout = 5 * time.Second

// host finds a host of the swarm by name (h2, or 2).
func (c *Controller) host(ctx context.Context, name string) (Swarm, Host, error) {
	if !strings.HasPrefix(name, "h") {
		name = "h" + name
	}
	sw, err := Inspect(ctx, c.Outer, c.Prefix)
	if err != nil {
		return sw, Host{}, err
	}
	h, ok := sw.Host(name)
	if !ok {
		return sw, Host{}, fmt.Errorf("test hosts %s have no host %s (they are h1 to h%d)", c.Prefix, name, len(sw.Hosts))
	}
	return sw, h, nil
}

// Manager returns a client of a running manager whose swarm answers, other
// than the hosts named in but when another one answers. The caller closes it.
func (c *Controller) Manager(ctx context.Context, but ...string) (*client.Client, error) {
	sw, err := Inspect(ctx, c.Outer, c.Prefix)
	if err != nil {
		return nil, err
	}
	var last error = errors.New("no manager runs")
	for pass := 0; pass < 2; pass++ {
		for _, h := range sw.Managers() {
			skipped := false
			for _, b := range but {
				skipped = skipped || b == h.Name
			}
			if h.State != "running" || skipped != (pass == 1) {
				continue
			}
			cli, err := h.Client()
			if err != nil {
				last = err
				continue
			}
			mctx, cancel := context.WithTimeout(ctx, managerTimeout)
			_, err = cli.NodeList(mctx, swarm.NodeListOptions{})
			cancel()
			if err == nil {
				return cli, nil
			}
			cli.Close()
			last = fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	return nil, fmt.Errorf("test hosts %s: no manager answers about the swarm (last: %v)", c.Prefix, last)
}

// HostOf is the host name (h1, h2…) of the node that runs the running task
// of service, as manager says; a nil manager is any manager that answers.
func (c *Controller) HostOf(ctx context.Context, manager client.APIClient, service string) (string, error) {
	if manager == nil {
		m, err := c.Manager(ctx)
		if err != nil {
			return "", err
		}
		defer m.Close()
		manager = m
	}
	tasks, err := manager.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", string(swarm.TaskStateRunning)))})
	if engine.IsNotFound(err) {
		return "", fmt.Errorf("test hosts %s run no service %s (is the cluster deployed on them?)", c.Prefix, service)
	}
	if err != nil {
		return "", fmt.Errorf("the tasks of service %s: %w", service, err)
	}
	var states []string
	for _, t := range tasks {
		// The filter matches service names by prefix: take the service's own.
		if t.Status.State != swarm.TaskStateRunning || t.NodeID == "" {
			states = append(states, string(t.Status.State))
			continue
		}
		if svc, _, err := manager.ServiceInspectWithRaw(ctx, t.ServiceID, swarm.ServiceInspectOptions{}); err != nil || svc.Spec.Name != service {
			continue
		}
		node, _, err := manager.NodeInspectWithRaw(ctx, t.NodeID)
		if err != nil {
			return "", fmt.Errorf("the node of service %s's task: %w", service, err)
		}
		return node.Description.Hostname, nil
	}
	if len(tasks) == 0 {
		return "", fmt.Errorf("service %s has no task to run (is it deployed on test hosts %s?)", service, c.Prefix)
	}
	return "", fmt.Errorf("service %s has no running task (tasks: %s)", service, strings.Join(states, ", "))
}

// Kill SIGKILLs the host's container: the whole host dies at once. A host
// that does not run is left alone.
func (c *Controller) Kill(ctx context.Context, name string) error {
	_, h, err := c.host(ctx, name)
	if err != nil {
		return err
	}
	if h.State != "running" {
		return nil
	}
	if err := c.Outer.ContainerKill(ctx, h.Container, "SIGKILL"); err != nil {
		return fmt.Errorf("killing host %s (container %s): %w", h.Name, h.Container, err)
	}
	for {
		ct, err := c.Outer.ContainerInspect(ctx, h.Container)
		if err != nil {
			return fmt.Errorf("inspecting host %s: %w", h.Name, err)
		}
		if ct.State == nil || !ct.State.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Start starts a host that does not run and returns once its engine answers
// on its socket and the swarm lists it ready (and reachable, for a manager)
// again. A cut left on the dead host is removed first: its namespace died
// with it.
func (c *Controller) Start(ctx context.Context, name string) error {
	_, h, err := c.host(ctx, name)
	if err != nil {
		return err
	}
	timeout := c.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	deadline := time.Now().Add(timeout)
	if h.State != "running" {
		if err := c.netFault(h).Clear(ctx); err != nil {
			return err
		}
		if err := startHost(ctx, c.Outer, Options{Prefix: c.Prefix, Ports: map[int][]int{h.Index: h.Ports}}, h.Index); err != nil {
			return err
		}
	}
	if err := waitEngine(ctx, c.Outer, c.Prefix, h, deadline); err != nil {
		return err
	}
	own, err := h.Client()
	if err != nil {
		return err
	}
	defer own.Close()
	sweepDead(ctx, own)
	for {
		// Ask a manager other than the host, which may still know the
		// swarm as it was before it died.
		m, err := c.Manager(ctx, h.Name)
		if err == nil {
			var missing []string
			missing, err = swarmNotReady(ctx, m, map[string]client.APIClient{h.Name: own}, Swarm{Prefix: c.Prefix, Hosts: []Host{h}})
			m.Close()
			if err == nil && len(missing) == 0 {
				return nil
			}
			if err == nil {
				err = errors.New(strings.Join(missing, "; "))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host %s started but the swarm does not list it ready in time: %v", h.Name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// netFault is the helper that cuts host h.
func (c *Controller) netFault(h Host) faults.NetFault {
	return faults.NetFault{
		Engine:    engine.New(c.Outer),
		Image:     c.HelperImage,
		Container: h.Container,
		Name:      h.Container + "-cut",
		Labels:    map[string]string{LabelHosts: c.Prefix, LabelRole: RoleCut, LabelNode: h.Name},
		Deadline:  c.Deadline,
	}
}

// Cut drops every packet between the host and the other hosts, and keeps
// it so until Join (or the deadline). A cut that fails part-way is undone.
func (c *Controller) Cut(ctx context.Context, name string) error {
	sw, h, err := c.host(ctx, name)
	if err != nil {
		return err
	}
	if h.State != "running" {
		return fmt.Errorf("host %s is %s: start it before cutting it off", h.Name, h.State)
	}
	n, err := c.Outer.NetworkInspect(ctx, sw.Network, network.InspectOptions{})
	if err != nil {
		return fmt.Errorf("the hosts' network %s: %w", sw.Network, err)
	}
	if len(n.IPAM.Config) == 0 {
		return fmt.Errorf("the hosts' network %s has no subnet", sw.Network)
	}
	// Every other host's fixed address, whether it runs or not.
	var others []string
	for _, o := range sw.Hosts {
		if o.Name == h.Name {
			continue
		}
		addr, err := hostAddress(n.IPAM.Config[0].Subnet, o.Index)
		if err != nil {
			return err
		}
		others = append(others, addr)
	}
	if len(others) == 0 {
		return fmt.Errorf("test hosts %s have no host but %s to cut it off from", c.Prefix, h.Name)
	}
	nf := c.netFault(h)
	if err := nf.Hold(ctx, append([]string{"drop"}, others...)...); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := nf.Clear(cctx); cerr != nil {
			err = fmt.Errorf("%w (and undoing it: %v)", err, cerr)
		}
		return fmt.Errorf("cutting host %s off %s: %w", h.Name, strings.Join(others, ", "), err)
	}
	return nil
}

// Join lifts a cut; a host that is not cut is no error.
func (c *Controller) Join(ctx context.Context, name string) error {
	_, h, err := c.host(ctx, name)
	if err != nil {
		return err
	}
	if err := c.netFault(h).Clear(ctx); err != nil {
		return fmt.Errorf("joining host %s again: %w", h.Name, err)
	}
	return nil
}

// Faults adapts the controller to what pgha's faults need (Target.Hosts):
// the host of a member is the host of its service, named as its container
// on one engine (topo.ContainerName(node)).
func (c *Controller) Faults() faults.HostFaults { return hostFaults{c} }

type hostFaults struct{ c *Controller }

func (f hostFaults) HostOf(ctx context.Context, topo topology.Cluster, node string) (string, error) {
	return f.c.HostOf(ctx, nil, topo.ContainerName(node))
}
func (f hostFaults) Kill(ctx context.Context, host string) error  { return f.c.Kill(ctx, host) }
func (f hostFaults) Start(ctx context.Context, host string) error { return f.c.Start(ctx, host) }
func (f hostFaults) Cut(ctx context.Context, host string) error   { return f.c.Cut(ctx, host) }
func (f hostFaults) Join(ctx context.Context, host string) error  { return f.c.Join(ctx, host) }
