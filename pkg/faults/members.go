package faults

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/topology"
)

// EtcdQuorum stops a majority of the etcd members for a while: etcd has no
// quorum, Patroni cannot renew the leader key, and the primary demotes
// itself (Patroni without failsafe mode) until etcd is back.
type EtcdQuorum struct{}

func (EtcdQuorum) Name() string { return "etcd-quorum" }
func (EtcdQuorum) Help() string {
	return "a majority of the etcd members (the leader first) stopped for 15 s: no DCS; the primary demotes itself, then a primary is elected again"
}
func (EtcdQuorum) Promises() Promises {
	return Promises{On: OnEtcdMajority, Failover: FailoverMaybe, Holds: true, Hold: 15 * time.Second}
}

// Inject stops a majority of the members, node (the leader, when known) first.
func (EtcdQuorum) Inject(ctx context.Context, t Target, node string) error {
	return each(majority(t.Topo, node), func(m string) error {
		eng, name := t.Backend.Where(t.Topo, m)
		timeout := 10
		return eng.API.ContainerStop(ctx, name, container.StopOptions{Timeout: &timeout})
	})
}

// Heal starts every etcd member that does not run.
func (EtcdQuorum) Heal(ctx context.Context, t Target, _ string) error {
	return each(t.Topo.EtcdNames(), func(m string) error { return start(ctx, t, m) })
}

// majority is the etcd members EtcdQuorum stops: first, then the others in
// the topology's order, until a majority.
func majority(topo topology.Cluster, first string) []string {
	n := len(topo.Etcd)/2 + 1
	var out []string
	if slices.Contains(topo.EtcdNames(), first) {
		out = append(out, first)
	}
	for _, m := range topo.EtcdNames() {
		if len(out) == n {
			break
		}
		if m != first {
			out = append(out, m)
		}
	}
	return out
}

// EtcdLeader kills the etcd member that leads; the others elect a new leader.
type EtcdLeader struct{}

func (EtcdLeader) Name() string { return "etcd-leader" }
func (EtcdLeader) Help() string {
	return "the etcd leader SIGKILLed, started again after 5 s: etcd elects another leader; no failover"
}
func (EtcdLeader) Promises() Promises {
	return Promises{On: OnEtcdLeader, Failover: NoFailover, Holds: true, Hold: 5 * time.Second, EngineConfirmsDeath: true}
}
func (EtcdLeader) Inject(ctx context.Context, t Target, node string) error {
	if !slices.Contains(t.Topo.EtcdNames(), node) {
		return fmt.Errorf("%q is not an etcd member of cluster %s", node, t.Topo.Name)
	}
	return kill(ctx, t, node)
}
func (EtcdLeader) Heal(ctx context.Context, t Target, node string) error { return start(ctx, t, node) }

// ReplicaKill kills a streaming replica: in synchronous mode the synchronous
// standby, whose place another replica must take.
type ReplicaKill struct{}

func (ReplicaKill) Name() string { return "replica-kill" }
func (ReplicaKill) Help() string {
	return "a streaming replica (the synchronous standby when there is one) SIGKILLed, started after 5 s; no failover"
}
func (ReplicaKill) Promises() Promises {
	return Promises{On: OnReplica, Failover: NoFailover, Holds: true, Hold: 5 * time.Second, EngineConfirmsDeath: true}
}
func (ReplicaKill) Inject(ctx context.Context, t Target, node string) error {
	return kill(ctx, t, node)
}
func (ReplicaKill) Heal(ctx context.Context, t Target, node string) error { return start(ctx, t, node) }

// PowerLoss kills every container of the cluster at once, as a power cut
// would, and brings the cluster back as `pgha up` does.
type PowerLoss struct{}

func (PowerLoss) Name() string { return "power-loss" }
func (PowerLoss) Help() string {
	return "every container of the cluster SIGKILLed at once, brought back after 5 s as `pgha up` does; no acknowledged write may be lost"
}
func (PowerLoss) Promises() Promises {
	return Promises{On: OnAll, Failover: FailoverMaybe, Holds: true, Hold: 5 * time.Second, EngineConfirmsDeath: true}
}
func (PowerLoss) Inject(ctx context.Context, t Target, _ string) error {
	cs, err := clusterContainers(ctx, t, "")
	if err != nil {
		return err
	}
	eng, _ := t.Backend.Where(t.Topo, "")
	var names []string
	for _, c := range cs {
		if c.State == container.StateRunning && c.Labels[topology.LabelRole] != RoleHelper {
			names = append(names, engine.SummaryName(c))
		}
	}
	return each(names, func(name string) error { return eng.API.ContainerKill(ctx, name, "SIGKILL") })
}

// Heal brings the cluster up (t.Up), or starts every container when no Up is given.
func (PowerLoss) Heal(ctx context.Context, t Target, _ string) error {
	if t.Up != nil {
		return t.Up(ctx)
	}
	cs, err := clusterContainers(ctx, t, "")
	if err != nil {
		return err
	}
	eng, _ := t.Backend.Where(t.Topo, "")
	var names []string
	for _, c := range cs {
		if c.State != container.StateRunning && c.Labels[topology.LabelRole] != RoleHelper {
			names = append(names, engine.SummaryName(c))
		}
	}
	return each(names, func(name string) error { return eng.API.ContainerStart(ctx, name, container.StartOptions{}) })
}

// StoreDown stops the object store for a while under the write workload:
// archive_command fails meanwhile, and every WAL segment must reach the
// repository once the store is back.
type StoreDown struct{}

func (StoreDown) Name() string { return "store-down" }
func (StoreDown) Help() string {
	return "the object store stopped for 15 s while WAL is archived; afterwards every segment must be in the repository"
}
func (StoreDown) Promises() Promises {
	return Promises{On: OnStore, Failover: NoFailover, Holds: true, Hold: 15 * time.Second, ArchivesWAL: true}
}
func (StoreDown) Inject(ctx context.Context, t Target, _ string) error {
	name, err := storeName(ctx, t)
	if err != nil {
		return err
	}
	eng, cname := t.Backend.Where(t.Topo, name)
	return eng.API.ContainerStop(ctx, cname, container.StopOptions{})
}
func (StoreDown) Heal(ctx context.Context, t Target, _ string) error {
	name, err := storeName(ctx, t)
	if err != nil {
		return err
	}
	return start(ctx, t, name)
}

// kill sends SIGKILL to a member's container.
func kill(ctx context.Context, t Target, node string) error {
	eng, name := t.Backend.Where(t.Topo, node)
	return eng.API.ContainerKill(ctx, name, "SIGKILL")
}

// each runs fn on every item at once and joins the errors.
func each(items []string, fn func(string) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(it); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", it, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// clusterContainers lists the cluster's containers (of one role, when role is
// set), running or not.
func clusterContainers(ctx context.Context, t Target, role string) ([]container.Summary, error) {
	eng, _ := t.Backend.Where(t.Topo, "")
	f := filters.NewArgs(filters.Arg("label", topology.LabelCluster+"="+t.Topo.Name))
	if role != "" {
		f.Add("label", topology.LabelRole+"="+role)
	}
	cs, err := eng.API.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing the containers of cluster %s: %w", t.Topo.Name, err)
	}
	return cs, nil
}

// storeName is the object store's node name (versitygw or minio).
func storeName(ctx context.Context, t Target) (string, error) {
	cs, err := clusterContainers(ctx, t, topology.RoleObjectStore)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if n := c.Labels[topology.LabelNode]; n != "" {
			return n, nil
		}
	}
	return "", fmt.Errorf("cluster %s has no object store container", t.Topo.Name)
}
