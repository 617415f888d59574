package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	pghacluster "github.com/pgha/pgha/pkg/cluster"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/pgha/pgha/pkg/failover"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/topology"
)

// The guard fenced a killed primary (TestFailover's kill, strict synchronous
// mode): a new leader within 3 s, not the lease, nothing acknowledged lost,
// its decision reported by failover-test and by status.
func checkGuardFenced(t *testing.T, c *cluster, rep failover.Report) {
	t.Helper()
	if !rep.Guard.Enabled || !rep.Guard.Active {
		t.Fatalf("the guard was not active: %+v", rep.Guard)
	}
	// Within 3 s: the guard acted, not the lease (20 s); loaded
	// machines have shown 2.3–2.4 s.
	if rep.NewLeaderSec <= 0 || rep.NewLeaderSec > 3 {
		t.Errorf("new leader after %.2fs, want within 3 s", rep.NewLeaderSec)
	}
	d := rep.Guard.Decision
	if d == nil || d.Member != rep.Target || d.Outcome != guard.OutcomeDeleted || d.Event != guard.EventDie {
		t.Fatalf("the guard's decision on %s: %+v", rep.Target, d)
	}
	t.Logf("guard: %s; %.1f ms after the engine's event (%.1f ms the engine's confirmation)", d.Reason, d.DecisionMs, d.ConfirmMs)
	st := c.status(t)
	if st.Guard == nil || st.Guard.LastDecision == nil || st.Guard.LastDecision.Member != rep.Target || st.Guard.LastDecision.Outcome != guard.OutcomeDeleted {
		t.Errorf("status: guard %+v", st.Guard)
	}
	if len(st.Problems) != 0 {
		t.Errorf("status problems: %v", st.Problems)
	}
}

// The guard left a paused primary to Patroni's lease (TestFailover's pause).
func checkGuardLeftPaused(t *testing.T, rep failover.Report) {
	t.Helper()
	d := rep.Guard.Decision
	if d == nil || d.Member != rep.Target || d.Action != guard.ActionNone || !strings.Contains(d.Reason, "paused") {
		t.Errorf("the guard's decision on the paused %s: %+v", rep.Target, d)
	}
	if rep.NewLeaderSec < 15 {
		t.Errorf("new leader after %.2fs: faster than Patroni's lease, something fenced a paused primary", rep.NewLeaderSec)
	}
}

// Without a running guard a kill costs Patroni's lease, and a guard started
// again reconciles and leaves a live leader's key alone (strict synchronous
// mode). TestFailover checks the guard's kill and pause.
func TestGuard(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 3).withoutRouter()
	r := mustPgha(t, append(c.upArgs(), "--sync", "strict")...)
	if !strings.Contains(r.stderr, "guard watching the engine's events") {
		t.Errorf("up did not wait for the guard:\n%s", r.stderr)
	}

	t.Run("guard killed, then primary killed", func(t *testing.T) {
		guardName := c.topo.ContainerName(topology.GuardNode)
		if err := docker.ContainerKill(context.Background(), guardName, "SIGKILL"); err != nil {
			t.Fatal(err)
		}
		rep := c.failover(t, "failover-test", "--fault", "kill")
		if rep.Guard.Active || rep.Guard.Decision != nil {
			t.Errorf("a killed guard reported active: %+v", rep.Guard)
		}
		if rep.NewLeaderSec < 15 || rep.LostAcked != 0 {
			t.Errorf("without the guard: new leader after %.2fs (want Patroni's lease), %d writes lost", rep.NewLeaderSec, rep.LostAcked)
		}

		// up starts the guard again; it reconciles and leaves the live leader alone.
		leader := rep.NewPrimary
		before := c.leaderKey(t)
		mustPgha(t, "up", "--name", c.name)
		st := c.status(t)
		d := st.Guard.LastDecision
		if !st.Guard.Watching || d == nil || d.Event != guard.EventReconcile || d.Member != leader || d.Outcome != guard.OutcomeLeftAlone || !strings.Contains(d.Reason, "running") {
			t.Errorf("after the guard's restart: %+v, last decision %+v", st.Guard, d)
		}
		if after := c.leaderKey(t); after != before {
			t.Errorf("the leader key changed when the guard came back: %+v -> %+v", before, after)
		}
	})
}

// Two clusters side by side: killing one's primary leaves the other's keys
// and guard alone. A cluster made with --guard=false has no guard.
func TestGuardTwoClusters(t *testing.T) {
	parallel(t)
	a := newCluster(t, 1, 3).withoutRouter() // strict mode needs a standby left after the kill
	mustPgha(t, append(a.upArgs(), "--sync", "strict")...)
	b := newCluster(t, 1, 2).withoutRouter()
	b.up(t)
	keyB := b.leaderKey(t)
	start := time.Now()

	rep := a.failover(t, "failover-test", "--fault", "kill")
	if d := rep.Guard.Decision; d == nil || d.Outcome != guard.OutcomeDeleted {
		t.Errorf("cluster %s's guard: %+v", a.name, d)
	}
	if got := b.leaderKey(t); got != keyB {
		t.Errorf("cluster %s's leader key changed: %+v -> %+v", b.name, keyB, got)
	}
	g, err := pghacluster.NewDocker(eng, nil).GuardStatus(context.Background(), b.topo)
	if err != nil || !g.Watching {
		t.Fatalf("cluster %s's guard: %+v, %v", b.name, g, err)
	}
	for _, r := range g.Records {
		if r.IsDecision() && !r.Time.Before(start) {
			t.Errorf("cluster %s's guard decided on something: %+v", b.name, r)
		}
	}
	if st := b.status(t); len(st.Problems) != 0 {
		t.Errorf("cluster %s: %v", b.name, st.Problems)
	}

	off := newCluster(t, 1, 1).withoutRouter()
	mustPgha(t, append(off.upArgs(), "--guard=false")...)
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", topology.LabelCluster+"="+off.name), filters.Arg("label", topology.LabelRole+"="+topology.RoleGuard))})
	if err != nil || len(cs) != 0 {
		t.Errorf("--guard=false: %d guard containers, %v", len(cs), err)
	}
	if st := off.status(t); st.Guard != nil || len(st.Problems) != 0 {
		t.Errorf("--guard=false: status guard %+v, problems %v", st.Guard, st.Problems)
	}
}

// leaderKey reads the cluster's leader key: its value and revision.
func (c *cluster) leaderKey(t *testing.T) guard.LeaderKey {
	t.Helper()
	etcd, err := c.access(t).Etcd()
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := etcd.Get(ctx, c.topo.KeyPrefix()+"leader")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return guard.LeaderKey{}
	}
	return guard.LeaderKey{Exists: true, Value: string(resp.Kvs[0].Value), ModRevision: resp.Kvs[0].ModRevision}
}
