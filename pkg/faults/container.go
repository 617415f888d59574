package faults

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/topology"
)

// Stop is a graceful stop: SIGTERM, Patroni shuts PostgreSQL down cleanly
// and releases the leader key.
type Stop struct{}

func (Stop) Name() string { return "stop" }
func (Stop) Help() string {
	return "graceful stop (SIGTERM): Patroni stops PostgreSQL cleanly and releases the leader key"
}
func (Stop) Promises() Promises {
	return Promises{On: OnPrimary, Failover: FailoverExpected, Graceful: true}
}
func (Stop) Inject(ctx context.Context, t Target, node string) error {
	eng, name := t.Backend.Where(t.Topo, node)
	return eng.API.ContainerStop(ctx, name, container.StopOptions{}) // the container's own 60 s stop timeout
}
func (Stop) Heal(ctx context.Context, t Target, node string) error { return start(ctx, t, node) }

// Kill is SIGKILL: the leader key must expire, unless the guard fences the
// dead member.
type Kill struct{}

func (Kill) Name() string { return "kill" }
func (Kill) Help() string {
	return "SIGKILL: a crash; the leader key expires with its lease, or the guard deletes it at once"
}
func (Kill) Promises() Promises {
	return Promises{On: OnPrimary, Failover: FailoverExpected, EngineConfirmsDeath: true}
}
func (Kill) Inject(ctx context.Context, t Target, node string) error {
	eng, name := t.Backend.Where(t.Topo, node)
	return eng.API.ContainerKill(ctx, name, "SIGKILL")
}
func (Kill) Heal(ctx context.Context, t Target, node string) error { return start(ctx, t, node) }

// Pause freezes the member's processes for a while: not dead, and it may
// resume as the primary.
type Pause struct{}

func (Pause) Name() string { return "pause" }
func (Pause) Help() string {
	return "frozen for --pause-for (the cgroup freezer): not dead, so only the lease can decide"
}
func (Pause) Promises() Promises {
	return Promises{On: OnPrimary, Failover: FailoverExpected, Holds: true}
}
func (Pause) Inject(ctx context.Context, t Target, node string) error {
	eng, name := t.Backend.Where(t.Topo, node)
	// The cgroup v1 freezer gives up ("unable to freeze") when a process
	// does not stop in time, which a busy machine sees now and then: try
	// again for a second before calling the fault failed.
	var err error
	_ = poll.For(ctx, time.Second, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		err = eng.API.ContainerPause(ctx, name)
		return err == nil || !strings.Contains(err.Error(), "unable to freeze"), nil
	})
	return err
}
func (Pause) Heal(ctx context.Context, t Target, node string) error {
	eng, name := t.Backend.Where(t.Topo, node)
	info, err := eng.API.ContainerInspect(ctx, name)
	if err != nil {
		return err
	}
	if info.State == nil || !info.State.Paused {
		return nil
	}
	return eng.API.ContainerUnpause(ctx, name)
}

// Partition cuts the member off the cluster network for a while.
type Partition struct{}

func (Partition) Name() string { return "partition" }
func (Partition) Help() string {
	return "cut off the cluster network for --pause-for (its published ports too); watched from inside"
}
func (Partition) Promises() Promises {
	return Promises{On: OnPrimary, Failover: FailoverExpected, Holds: true, CutsPorts: true}
}
func (Partition) Inject(ctx context.Context, t Target, node string) error {
	return t.Backend.Isolate(ctx, t.Topo, node)
}
func (Partition) Heal(ctx context.Context, t Target, node string) error {
	return t.Backend.Rejoin(ctx, t.Topo, node)
}

// Starter is a backend that starts members itself (a swarm starts a new
// task of the member's service rather than its old container).
type Starter interface {
	StartMember(ctx context.Context, topo topology.Cluster, node string) error
}

// start starts a stopped or killed member again; a running one is left alone.
func start(ctx context.Context, t Target, node string) error {
	if s, ok := t.Backend.(Starter); ok {
		return s.StartMember(ctx, t.Topo, node)
	}
	eng, name := t.Backend.Where(t.Topo, node)
	info, err := eng.API.ContainerInspect(ctx, name)
	if err != nil {
		return err
	}
	if info.State != nil && info.State.Running {
		return nil
	}
	if err := eng.API.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	return nil
}
