package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
)

// RoleHelper is the role label of the network-fault helper containers.
const RoleHelper = images.RoleNetfault

// Packet loss and bandwidth of LossyNetwork.
const (
	LossPercent  = 10
	BandwidthCap = "1mbit"
)

// DCSPartition cuts the primary off etcd and the other Patroni nodes, and
// only them: clients on the host still reach it through its published
// ports. This is the case where an isolated primary may acknowledge writes
// that are lost when the others elect a new primary (in asynchronous mode).
//
// It runs inside the node's network namespace: a helper container that
// shares it (NetworkMode container:<node>, the NET_ADMIN capability alone)
// adds a chain PGHA-FAULT that drops every packet to or from the etcd
// members' and the other Patroni nodes' addresses on the cluster network.
// Published ports reach the node from the network's gateway (Docker's
// proxy), which is not dropped. Heal flushes and deletes the chain.
type DCSPartition struct{}

func (DCSPartition) Name() string { return "dcs-partition" }
func (DCSPartition) Help() string {
	return "cut from etcd and the other Patroni nodes for --pause-for (iptables in its namespace); clients on the host still reach it"
}
func (DCSPartition) Promises() Promises {
	return Promises{On: OnPrimary, Failover: FailoverExpected, Holds: true, Helper: true}
}
func (DCSPartition) Inject(ctx context.Context, t Target, node string) error {
	ips, err := peerAddresses(ctx, t, node)
	if err != nil {
		return err
	}
	return holdNetFault(ctx, t, node, append([]string{"drop"}, ips...)...)
}
func (DCSPartition) Heal(ctx context.Context, t Target, node string) error {
	return clearNetFault(ctx, t, node)
}

// LossyNetwork drops packets at random on the primary's interface, both
// ways, and caps its egress bandwidth (iptables statistic, tc tbf: this
// engine's kernel has no netem, so no added latency).
type LossyNetwork struct{}

func (LossyNetwork) Name() string { return "lossy-network" }
func (LossyNetwork) Help() string {
	return fmt.Sprintf("%d%% of the primary's packets dropped at random and its egress capped at %s for 15 s; no failover", LossPercent, BandwidthCap)
}
func (LossyNetwork) Promises() Promises {
	return Promises{On: OnPrimary, Failover: NoFailover, Holds: true, Hold: 15 * time.Second, Helper: true}
}
func (LossyNetwork) Inject(ctx context.Context, t Target, node string) error {
	return holdNetFault(ctx, t, node, "lossy", fmt.Sprint(LossPercent), BandwidthCap)
}
func (LossyNetwork) Heal(ctx context.Context, t Target, node string) error {
	return clearNetFault(ctx, t, node)
}

// HelperName is the name of the helper container that holds a network fault
// on a member's container.
func HelperName(memberContainer string) string { return memberContainer + "-netfault" }

// peerAddresses are the addresses on the cluster network of every etcd member
// and every Patroni node but node.
func peerAddresses(ctx context.Context, t Target, node string) ([]string, error) {
	cs, err := clusterContainers(ctx, t, "")
	if err != nil {
		return nil, err
	}
	var ips, missing []string
	for _, c := range cs {
		role, n := c.Labels[topology.LabelRole], c.Labels[topology.LabelNode]
		if (role != topology.RoleEtcd && role != topology.RolePatroni) || n == node {
			continue
		}
		var ip string
		if c.NetworkSettings != nil {
			if ep := c.NetworkSettings.Networks[t.Topo.NetworkName()]; ep != nil {
				ip = ep.IPAddress
			}
		}
		if ip == "" {
			missing = append(missing, n)
			continue
		}
		ips = append(ips, ip)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no etcd member or other Patroni node of %s has an address on %s", t.Topo.Name, t.Topo.NetworkName())
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not on %s (not running?): cannot cut %s off them", strings.Join(missing, ", "), t.Topo.NetworkName(), node)
	}
	return ips, nil
}

// HelperImage is the network-fault helper's image: ref when given, else the
// one on eng, built when missing.
func HelperImage(ctx context.Context, eng *engine.Engine, ref string) (string, error) {
	if ref != "" {
		return ref, nil
	}
	im, err := (&images.Supplier{Engine: eng, Progress: progress.Discard{}}).Netfault(ctx)
	if err != nil {
		return "", fmt.Errorf("the network-fault helper image: %w", err)
	}
	return im.Ref, nil
}

// netFault is the helper that holds a fault on a cluster member.
func netFault(t Target, node string) NetFault {
	eng, target := t.Backend.Where(t.Topo, node)
	return NetFault{Engine: eng, Image: t.HelperImage, Container: target, Labels: t.Topo.Labels(RoleHelper, node), Deadline: t.Deadline}
}

// holdNetFault starts the helper in node's network namespace with
// `pgha-netfault hold DEADLINE args...` and waits until the fault is in
// place.
func holdNetFault(ctx context.Context, t Target, node string, args ...string) error {
	return netFault(t, node).Hold(ctx, args...)
}

// clearNetFault undoes a network fault on node.
func clearNetFault(ctx context.Context, t Target, node string) error {
	return netFault(t, node).Clear(ctx)
}

// NetFault is pgha's network-fault helper (images/netfault) run in one
// container's network namespace: a container on the same engine with
// NetworkMode container:<Container> and the NET_ADMIN capability alone, so
// it changes that namespace and nothing else. Everything it adds lives in
// the iptables chain PGHA-FAULT (and a root qdisc), which Clear removes.
type NetFault struct {
	// Engine runs Container, and the helper beside it.
	Engine *engine.Engine
	// Image is the helper's image; empty finds or builds it on Engine.
	Image string
	// Container is the container whose network namespace the fault acts on.
	Container string
	// Name is the helper container's name; empty: HelperName(Container).
	Name string
	// Labels go on the helper containers (its owner's, so that whoever
	// removes the owner's containers removes them too).
	Labels map[string]string
	// Deadline is how long the fault lifts itself after, should its holder
	// die before it clears it (0: 10 minutes).
	Deadline time.Duration
}

func (n NetFault) name() string {
	if n.Name != "" {
		return n.Name
	}
	return HelperName(n.Container)
}

// Hold starts the helper with `pgha-netfault hold DEADLINE args...` (such as
// "drop", IP...) and waits until the fault is in place. The helper keeps it
// until Clear, or lifts it itself at the deadline.
func (n NetFault) Hold(ctx context.Context, args ...string) error {
	eng := n.Engine
	img, err := HelperImage(ctx, eng, n.Image)
	if err != nil {
		return err
	}
	deadline := n.Deadline
	if deadline <= 0 {
		deadline = 10 * time.Minute
	}
	name := n.name()
	if err := removeContainer(ctx, eng, name); err != nil {
		return err
	}
	cmd := append([]string{"hold", fmt.Sprint(int(deadline.Seconds()))}, args...)
	_, err = eng.API.ContainerCreate(ctx, &container.Config{Image: img, Cmd: cmd, Labels: n.Labels},
		&container.HostConfig{
			NetworkMode: container.NetworkMode("container:" + n.Container),
			CapDrop:     []string{"ALL"},
			CapAdd:      []string{"NET_ADMIN"},
		}, nil, nil, name)
	if err != nil {
		return fmt.Errorf("creating the network-fault helper %s: %w", name, err)
	}
	if err := eng.API.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting the network-fault helper %s in %s's network namespace: %w", name, n.Container, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		logs, _ := eng.LogTail(wctx, name, "all")
		if strings.Contains(logs, "pgha-netfault: in place") {
			return nil
		}
		info, err := eng.API.ContainerInspect(wctx, name)
		if err == nil && info.State != nil && !info.State.Running {
			return fmt.Errorf("the network-fault helper %s exited (%d) before the fault was in place: %s", name, info.State.ExitCode, strings.TrimSpace(logs))
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("the network-fault helper %s did not put the fault in place within 30 s: %s", name, strings.TrimSpace(logs))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Clear undoes the fault: `pgha-netfault clear` in the helper that holds
// it, or in a new helper when that one is gone, then the helper is removed.
// A container that does not run has no namespace left, and nothing to
// clear. Clearing what holds no fault is no error.
func (n NetFault) Clear(ctx context.Context) error {
	eng, target, name := n.Engine, n.Container, n.name()
	cleared := false
	var errs []error
	if info, err := eng.API.ContainerInspect(ctx, name); err == nil && info.State != nil && info.State.Running {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := eng.Output(cctx, name, engine.ExecOptions{}, "pgha-netfault", "clear")
		cancel()
		if err == nil {
			cleared = true
		} else {
			errs = append(errs, err)
		}
	}
	if !cleared {
		if tinfo, err := eng.API.ContainerInspect(ctx, target); err != nil {
			if !engine.IsNotFound(err) {
				return err
			}
		} else if tinfo.State != nil && tinfo.State.Running {
			if err := n.oneShotClear(ctx); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
	}
	return removeContainer(ctx, eng, name)
}

// oneShotClear runs `pgha-netfault clear` in a new helper in the container's namespace.
func (n NetFault) oneShotClear(ctx context.Context) error {
	eng := n.Engine
	img, err := HelperImage(ctx, eng, n.Image)
	if err != nil {
		return err
	}
	name := n.name() + "-clear"
	if err := removeContainer(ctx, eng, name); err != nil {
		return err
	}
	_, err = eng.API.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"clear"}, Labels: n.Labels},
		&container.HostConfig{NetworkMode: container.NetworkMode("container:" + n.Container), CapDrop: []string{"ALL"}, CapAdd: []string{"NET_ADMIN"}},
		nil, nil, name)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	defer removeContainer(context.WithoutCancel(ctx), eng, name)
	waitC, errC := eng.API.ContainerWait(ctx, name, container.WaitConditionNextExit)
	if err := eng.API.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	select {
	case res := <-waitC:
		if res.StatusCode != 0 {
			logs, _ := eng.LogTail(ctx, name, "20")
			return fmt.Errorf("%s exited %d: %s", name, res.StatusCode, strings.TrimSpace(logs))
		}
		return nil
	case err := <-errC:
		return fmt.Errorf("waiting for %s: %w", name, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// removeContainer removes a helper container; one that is gone is no error.
func removeContainer(ctx context.Context, eng *engine.Engine, name string) error {
	err := eng.API.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
	if err != nil && !engine.IsNotFound(err) {
		return fmt.Errorf("removing the network-fault helper %s: %w", name, err)
	}
	return nil
}
