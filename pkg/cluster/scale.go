package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
)

// Scaling a running cluster's Patroni nodes. The topology a cluster was
// made with is a label on its network, and labels cannot change; a scaled
// cluster's topology is a label on a marker volume instead, which records
// the network's ID: Find prefers it while that network exists, so that a
// `down` (the network goes) followed by `up` starts from the flags again,
// and `down -v` removes the marker with the other volumes.

// RoleTopology is the role of a scaled cluster's topology marker volume.
const RoleTopology = "topology"

// labelNetworkID names the network a topology marker belongs to.
const labelNetworkID = "io.pgha.network-id"

// MaxPatroni bounds scale: the seed's port pattern leaves room for this many.
const MaxPatroni = 9

func markerVolume(name string) string { return fmt.Sprintf("pgha-%s-topology", name) }

// scaledTopology is the topology label of the cluster's marker volume when it
// belongs to the network netID ("" for none).
func (d *Docker) scaledTopology(ctx context.Context, name, netID string) (string, error) {
	v, err := d.Engine.API.VolumeInspect(ctx, markerVolume(name))
	switch {
	case engine.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("inspecting volume %s: %w", markerVolume(name), err)
	case v.Labels[topology.LabelCluster] != name || v.Labels[labelNetworkID] != netID:
		return "", nil
	}
	return v.Labels[topology.LabelTopology], nil
}

// writeTopology records a scaled topology on the marker volume, replacing
// the previous one.
func (d *Docker) writeTopology(ctx context.Context, topo topology.Cluster) error {
	api, name := d.Engine.API, markerVolume(topo.Name)
	nw, err := api.NetworkInspect(ctx, topo.NetworkName(), network.InspectOptions{})
	if err != nil {
		return fmt.Errorf("inspecting network %s: %w", topo.NetworkName(), err)
	}
	if owned, err := d.volumeOwned(ctx, topo.Name, name); err != nil {
		return err
	} else if !owned {
		return fmt.Errorf("volume %s exists and was not created by pgha for cluster %s", name, topo.Name)
	}
	if err := api.VolumeRemove(ctx, name, true); err != nil && !engine.IsNotFound(err) {
		return fmt.Errorf("replacing volume %s: %w", name, err)
	}
	labels := topo.Labels(RoleTopology, "")
	labels[topology.LabelTopology] = topologyLabel(topo)
	labels[labelNetworkID] = nw.ID
	if _, err := api.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels}); err != nil {
		return fmt.Errorf("creating volume %s: %w", name, err)
	}
	return nil
}

// Grown is topo with Patroni nodes added up to n: the lowest free patroniK
// names, each on the next PostgreSQL and REST ports that neither the
// topology publishes nor inUse reports (nil: none is).
func Grown(topo topology.Cluster, n int, inUse func(port int) bool) topology.Cluster {
	out := topo
	out.Patroni = slices.Clone(topo.Patroni)
	used := map[int]bool{}
	for _, hp := range topo.HostPorts(topology.StoreMinIO) {
		used[hp.Port] = true
	}
	pg, rest := 0, 0
	for _, p := range topo.Patroni {
		pg, rest = max(pg, p.PGPort), max(rest, p.RESTPort)
	}
	free := func(p, step int) int {
		for used[p] || inUse != nil && inUse(p) {
			p += step
		}
		used[p] = true
		return p
	}
	for k := 1; len(out.Patroni) < n; k++ {
		name := fmt.Sprintf("patroni%d", k)
		if _, ok := out.PatroniNode(name); ok {
			continue
		}
		pg, rest = free(pg+1, 1), free(rest+2, 2)
		out.Patroni = append(out.Patroni, topology.PGNode{Name: name, PGPort: pg, RESTPort: rest})
	}
	return out
}

// ShrinkVictims picks the nodes to remove to get down to n: replicas only,
// the highest-numbered first (the newest), never the leader.
func ShrinkVictims(topo topology.Cluster, n int, leader string) []string {
	var candidates []string
	for _, p := range topo.Patroni {
		if p.Name != leader {
			candidates = append(candidates, p.Name)
		}
	}
	// Newest first: patroni10 after patroni9.
	slices.SortStableFunc(candidates, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(b, a)
	})
	return candidates[:min(len(candidates), len(topo.Patroni)-n)]
}

// ScaleResult says what Scale did.
type ScaleResult struct {
	From    int      `json:"from"`
	To      int      `json:"to"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// Scale brings a running cluster to n Patroni nodes. New nodes are created
// and started by Up, which waits until every replica streams. Removed nodes
// are replicas only (never the leader): their containers and data volumes go,
// then their member keys and replication slots are waited for (and removed
// when they linger).
func (d *Docker) Scale(ctx context.Context, name string, n int, timeout time.Duration) (ScaleResult, error) {
	if d.swarm != nil {
		return ScaleResult{}, fmt.Errorf("scale is not offered on a swarm yet: add or remove a member in the topology file and run pgha up --swarm -f FILE on a new cluster")
	}
	topo, err := d.Find(ctx, name)
	if err != nil {
		return ScaleResult{}, err
	}
	res := ScaleResult{From: len(topo.Patroni), To: n, Added: []string{}, Removed: []string{}}
	if n < 1 || n > MaxPatroni {
		return res, fmt.Errorf("--patroni %d: a cluster has 1 to %d Patroni nodes", n, MaxPatroni)
	}
	if n == len(topo.Patroni) {
		return res, nil
	}
	acc, err := AccessFor(d, topo)
	if err != nil {
		return res, err
	}
	if n > len(topo.Patroni) {
		// Ports another container or process holds are skipped, so that
		// the new nodes do not fail up's port check.
		published, err := d.publishedPorts(ctx)
		if err != nil {
			return res, err
		}
		grown := Grown(topo, n, func(p int) bool {
			if _, ok := published[p]; ok {
				return true
			}
			return !d.Engine.Endpoint.Remote && portFree(p) != nil
		})
		for _, p := range grown.Patroni[len(topo.Patroni):] {
			res.Added = append(res.Added, p.Name)
		}
		if err := d.writeTopology(ctx, grown); err != nil {
			return res, err
		}
		if _, err := d.Up(ctx, grown, timeout); err != nil {
			return res, fmt.Errorf("adding %s: %w (`pgha scale --name %s --patroni %d` goes back)", strings.Join(res.Added, ", "), err, name, len(topo.Patroni))
		}
		return res, nil
	}
	return res, d.shrink(ctx, topo, acc, n, timeout, &res)
}

func (d *Docker) shrink(ctx context.Context, topo topology.Cluster, acc clients.Access, n int, timeout time.Duration, res *ScaleResult) error {
	leader, _ := acc.Primary(ctx)
	if leader == "" {
		return fmt.Errorf("cluster %s has no running primary: scaling down now could remove the node that should take over; `pgha status --name %s` shows why", topo.Name, topo.Name)
	}
	victims := ShrinkVictims(topo, n, leader)
	res.Removed = victims
	shrunk := topo
	shrunk.Patroni = slices.DeleteFunc(slices.Clone(topo.Patroni), func(p topology.PGNode) bool { return slices.Contains(victims, p.Name) })
	if slices.Contains(victims, shrunk.BootstrapLeader) || !slices.ContainsFunc(shrunk.Patroni, func(p topology.PGNode) bool { return p.Name == shrunk.BootstrapLeader }) {
		shrunk.BootstrapLeader = leader
	}
	err := progress.Step(d.Progress, fmt.Sprintf("Removing %s", strings.Join(topo.ContainerNames(victims), ", ")), func() (string, error) {
		// A graceful stop first: Patroni deletes its member key on shutdown.
		for _, v := range victims {
			stop := 60
			if err := d.Engine.API.ContainerStop(ctx, topo.ContainerName(v), container.StopOptions{Timeout: &stop}); err != nil && !engine.IsNotFound(err) {
				return "", fmt.Errorf("stopping %s: %w", topo.ContainerName(v), err)
			}
		}
		if err := d.RemoveMembers(ctx, topo, victims); err != nil {
			return "", err
		}
		if err := d.RemoveVolumes(ctx, topo, victims); err != nil {
			return "", err
		}
		return fmt.Sprintf("Removed %s and their data volumes", strings.Join(topo.ContainerNames(victims), ", ")), d.writeTopology(ctx, shrunk)
	})
	if err != nil {
		return err
	}
	return progress.Step(d.Progress, "Waiting for their member keys and replication slots to go", func() (string, error) {
		keys, slots, err := forgetMembers(ctx, acc, topo, leader, victims, timeout)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Member keys and slots of %s gone (%d keys deleted before their lease ended, %d slots dropped by pgha)",
			strings.Join(victims, ", "), keys, slots), nil
	})
}

// slotName is Patroni's replication slot name for a member.
func slotName(member string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, member)
}

// forgetMembers waits until the removed members' keys and the leader's
// slots for them are gone. Their keys are deleted (a stopped member's key
// lives until its lease ends); the leader then drops their slots on its next
// HA loop. A slot that still lingers after 20 s is dropped by pgha.
func forgetMembers(ctx context.Context, acc clients.Access, topo topology.Cluster, leader string, victims []string, timeout time.Duration) (keysDeleted, slotsDropped int, err error) {
	etcd, err := acc.Etcd()
	if err != nil {
		return 0, 0, err
	}
	defer etcd.Close()
	// Patroni 4 keeps an absent member's slot for member_slots_ttl (30 min by
	// default) in case it comes back; a removed node does not. The setting
	// goes to 0 until the slots are gone, then back to what it was.
	cfg, err := acc.DynamicConfig(ctx)
	if err != nil {
		return 0, 0, err
	}
	if err := acc.PatchConfig(ctx, leader, map[string]any{"member_slots_ttl": 0}); err != nil {
		return 0, 0, fmt.Errorf("letting Patroni drop the removed members' slots: %w", err)
	}
	defer func() {
		rctx, cancel := poll.Detached(ctx, 10*time.Second)
		defer cancel()
		if rerr := acc.PatchAny(rctx, map[string]any{"member_slots_ttl": cfg["member_slots_ttl"]}); rerr != nil && err == nil {
			err = fmt.Errorf("restoring member_slots_ttl: %w", rerr)
		}
	}()
	start := time.Now()
	var left []string
	err = poll.For(ctx, timeout, 500*time.Millisecond, func(ctx context.Context) (bool, error) {
		left = left[:0]
		for _, v := range victims {
			key := topo.KeyPrefix() + "members/" + v
			ok, err := clients.KeyExists(ctx, etcd, key)
			if err != nil {
				return false, nil
			}
			if ok {
				// A stopped replica's key lives on until its lease ends (ttl):
				// its node is gone, so the key goes now.
				left = append(left, "key "+key)
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				if _, err := etcd.Delete(cctx, key); err == nil {
					keysDeleted++
				}
				cancel()
			}
		}
		conn, err := acc.Connect(ctx, leader)
		if err != nil {
			return false, nil
		}
		defer conn.Close(context.Background())
		for _, v := range victims {
			var exists bool
			if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, slotName(v)).Scan(&exists); err != nil {
				return false, nil
			}
			if !exists {
				continue
			}
			left = append(left, "slot "+slotName(v))
			if time.Since(start) > 20*time.Second {
				if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, slotName(v)); err == nil {
					slotsDropped++
				}
			}
		}
		return len(left) == 0, nil
	})
	if err != nil && ctx.Err() == nil {
		return keysDeleted, slotsDropped, fmt.Errorf("still there after %s: %s", timeout, strings.Join(left, ", "))
	}
	return keysDeleted, slotsDropped, err
}
