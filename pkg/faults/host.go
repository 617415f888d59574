package faults

import (
	"context"
	"fmt"
	"sync"

	"github.com/pgha/pgha/pkg/topology"
)

// HostFaults is what the host-level faults need: the hosts that run a
// cluster deployed on a swarm, and a way to kill, start, cut and join them.
// pkg/hosts.Controller provides it for test hosts made by `pgha hosts
// create` (Controller.Faults). Target.Hosts is nil on one engine.
type HostFaults interface {
	// HostOf is the host name (h1, h2…) of the node whose running task
	// runs the cluster member node.
	HostOf(ctx context.Context, topo topology.Cluster, node string) (string, error)
	// Kill kills the whole host at once: its containers send no event.
	Kill(ctx context.Context, host string) error
	// Start starts a killed host and returns once its engine answers and
	// the swarm lists it ready again.
	Start(ctx context.Context, host string) error
	// Cut cuts the host off the other hosts (swarm control, gossip, overlay
	// traffic) while this machine still reaches its published ports.
	Cut(ctx context.Context, host string) error
	// Join undoes Cut; joining a host that is not cut is no error.
	Join(ctx context.Context, host string) error
}

// errNoHosts is the error of a host fault on a cluster that runs on one engine.
func errNoHosts(fault string) error {
	return fmt.Errorf("%s needs a cluster on test hosts made by `pgha hosts create` (on real hosts, stop the machine yourself)", fault)
}

// hostsHit remembers which host a host fault acted on, per cluster and
// member, so that its heal acts on the same host even when the swarm can no
// longer say where the member runs.
var hostsHit = struct {
	sync.Mutex
	m map[[2]string]string
}{m: map[[2]string]string{}}

// hitHost finds the host that runs node and remembers it.
func hitHost(ctx context.Context, fault string, t Target, node string) (string, error) {
	if t.Hosts == nil {
		return "", errNoHosts(fault)
	}
	host, err := t.Hosts.HostOf(ctx, t.Topo, node)
	if err != nil {
		return "", fmt.Errorf("which host runs %s: %w", node, err)
	}
	hostsHit.Lock()
	hostsHit.m[[2]string{t.Topo.Name, node}] = host
	hostsHit.Unlock()
	return host, nil
}

// hostHit is the host a fault acted on for node, if it did; healed forgets it.
func hostHit(t Target, node string) (host string, ok bool) {
	hostsHit.Lock()
	defer hostsHit.Unlock()
	host, ok = hostsHit.m[[2]string{t.Topo.Name, node}]
	return host, ok && t.Hosts != nil
}

// healed forgets the host of a healed fault.
func healed(t Target, node string) {
	hostsHit.Lock()
	delete(hostsHit.m, [2]string{t.Topo.Name, node})
	hostsHit.Unlock()
}

// HostDown kills the whole test host that runs the primary: the engine, the
// members it runs and their network stop at once, and no engine reports the
// deaths (each engine's events are its own), so the guard on the other
// hosts sees nothing and only the leader lease can decide.
type HostDown struct{}

func (HostDown) Name() string { return "host-down" }
func (HostDown) Help() string {
	return "the test host that runs the primary killed (SIGKILL of its engine's container): no engine reports the death; the lease decides"
}
func (HostDown) Promises() Promises {
	return Promises{On: OnPrimary, Failover: FailoverExpected, NeedsHosts: true}
}
func (f HostDown) Inject(ctx context.Context, t Target, node string) error {
	host, err := hitHost(ctx, f.Name(), t, node)
	if err != nil {
		return err
	}
	return t.Hosts.Kill(ctx, host)
}

// Heal starts the host the fault killed; a fault that killed none heals nothing.
func (HostDown) Heal(ctx context.Context, t Target, node string) error {
	host, ok := hostHit(t, node)
	if !ok {
		return nil
	}
	if err := t.Hosts.Start(ctx, host); err != nil {
		return err
	}
	// The host's engine came back with its containers dead, and a swarm
	// restarts nothing (so that no fault is undone behind pgha's back):
	// up starts their services' new tasks, as after a real machine's loss.
	if t.Up != nil {
		if err := t.Up(ctx); err != nil {
			return err
		}
	}
	healed(t, node)
	return nil
}

// HostPartition cuts the test host that runs the primary off the other
// hosts (iptables in the host's own network namespace: swarm control,
// gossip and overlay traffic dropped) for --pause-for, beyond the leader
// lease. This machine still reaches the host's published ports.
type HostPartition struct{}

func (HostPartition) Name() string { return "host-partition" }
func (HostPartition) Help() string {
	return "the test host that runs the primary cut off the other hosts for --pause-for; this machine still reaches its ports"
}
func (HostPartition) Promises() Promises {
	// Not Helper: the helper runs in the host's namespace, on the engine
	// that runs the hosts (hosts.Controller.EnsureHelper finds or builds it).
	return Promises{On: OnPrimary, Failover: FailoverExpected, Holds: true, NeedsHosts: true}
}
func (f HostPartition) Inject(ctx context.Context, t Target, node string) error {
	host, err := hitHost(ctx, f.Name(), t, node)
	if err != nil {
		return err
	}
	return t.Hosts.Cut(ctx, host)
}

// Heal joins the host the fault cut; a fault that cut none heals nothing.
func (HostPartition) Heal(ctx context.Context, t Target, node string) error {
	host, ok := hostHit(t, node)
	if !ok {
		return nil
	}
	if err := t.Hosts.Join(ctx, host); err != nil {
		return err
	}
	healed(t, node)
	return nil
}
