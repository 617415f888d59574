package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/failover"
)

// failover runs pgha failover-test (or switchover) with -o json.
func (c *cluster) failover(t *testing.T, args ...string) failover.Report {
	t.Helper()
	r := pgha(t, nil, append(args, "--name", c.name, "-o", "json", "--timeout", "90s")...)
	var rep failover.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%s -o json: %v\n%s", args[0], err, r)
	}
	if r.code != 0 || !rep.OK {
		c.failures = append(c.failures, fmt.Sprintf("%v: %v", args, rep.Failures))
		c.dumpLogs(t)
		t.Fatalf("%v failed: %v\n%s", args, rep.Failures, r)
	}
	t.Logf("%s on %s: new leader %.2fs, writes unavailable %.2fs, rejoin %.2fs, acked %d, lost %d, %s -> %s (timeline %d -> %d)",
		rep.Fault, rep.Target, rep.NewLeaderSec, rep.UnavailableSec, rep.RejoinSec, rep.Audit.Acked, rep.LostAcked,
		rep.OldPrimary, rep.NewPrimary, rep.OldTimeline, rep.NewTimeline)
	return rep
}

// Every fault mode on the primary in strict synchronous mode: a new primary,
// the old one back as a streaming replica, no acknowledged write lost, a
// healthy cluster; the guard fences the killed primary and leaves the paused
// one to the lease. Then a replica stop (no failover) and a switchover.
func TestFailover(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 3)
	mustPgha(t, append(c.upArgs(), "--sync", "strict")...)

	for _, fault := range []string{"stop", "kill", "pause", "partition"} {
		t.Run(fault+" primary", func(t *testing.T) {
			args := []string{"failover-test", "--fault", fault}
			if fault == "pause" || fault == "partition" {
				args = append(args, "--pause-for", "25s") // the fast profile's 20 s lease, and some
			}
			rep := c.failover(t, args...)
			if !rep.TargetWasLeader || rep.Target != rep.OldPrimary {
				t.Errorf("the target %s was not the primary %s", rep.Target, rep.OldPrimary)
			}
			if rep.NewPrimary == rep.OldPrimary || rep.NewPrimary == "" {
				t.Errorf("no new primary: %s -> %s", rep.OldPrimary, rep.NewPrimary)
			}
			if rep.NewTimeline <= rep.OldTimeline {
				t.Errorf("timeline %d -> %d", rep.OldTimeline, rep.NewTimeline)
			}
			if rep.LostAcked != 0 || len(rep.Audit.Phantom) != 0 || rep.Audit.Acked == 0 {
				t.Errorf("writes: %+v", rep.Audit)
			}
			if !rep.VerifiedAfter || rep.NewLeaderSec <= 0 || rep.UnavailableSec <= 0 {
				t.Errorf("report: %+v", rep)
			}
			switch fault {
			case "kill":
				checkGuardFenced(t, c, rep)
			case "pause":
				checkGuardLeftPaused(t, rep)
			case "partition":
				if rep.IsolatedStoppedWritesSec <= 0 {
					t.Errorf("the isolated old primary was not seen to stop taking writes: %+v", rep)
				}
			}
		})
	}

	t.Run("stop replica", func(t *testing.T) {
		replica := c.aReplica(t)
		rep := c.failover(t, "failover-test", "--fault", "stop", "--target", replica)
		if rep.TargetWasLeader || rep.NewPrimary != rep.OldPrimary {
			t.Errorf("stopping replica %s changed the primary: %s -> %s", replica, rep.OldPrimary, rep.NewPrimary)
		}
		if rep.UnavailableSec > 1 {
			t.Errorf("writes stopped for %.2fs when a replica stopped", rep.UnavailableSec)
		}
	})

	t.Run("switchover", func(t *testing.T) {
		// In synchronous mode Patroni promotes only the synchronous standby.
		to := c.syncStandby(t)
		rep := c.failover(t, "switchover", "--to", to)
		if rep.NewPrimary != to {
			t.Fatalf("switchover to %s made %s the primary", to, rep.NewPrimary)
		}
		st, err := c.access(t).Patroni(context.Background(), to)
		if err != nil || !st.Leading() {
			t.Errorf("%s after switchover: %+v %v", to, st, err)
		}
		if rep2, _ := c.verify(t); !rep2.OK {
			t.Errorf("after switchover: %s", failedRows(rep2))
		}
	})

	t.Run("refuses an unhealthy cluster", func(t *testing.T) {
		replica := c.aReplica(t)
		if err := docker.ContainerKill(context.Background(), c.name+"-"+replica, "SIGKILL"); err != nil {
			t.Fatal(err)
		}
		r := pgha(t, nil, "failover-test", "--name", c.name)
		if r.code != 1 || !strings.Contains(r.stderr, "does not verify healthy") || !strings.Contains(r.stdout, replica) {
			t.Errorf("failover-test on an unhealthy cluster: %s", r)
		}
		if err := docker.ContainerStart(context.Background(), c.name+"-"+replica, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

// aReplica returns a node that is currently a streaming replica.
func (c *cluster) aReplica(t *testing.T) string {
	t.Helper()
	for _, n := range c.topo.Patroni {
		if st, err := c.access(t).Patroni(context.Background(), n.Name); err == nil && st.Streaming() {
			return n.Name
		}
	}
	t.Fatal("no streaming replica")
	return ""
}

// syncStandby returns the member Patroni lists as synchronous standby.
func (c *cluster) syncStandby(t *testing.T) string {
	t.Helper()
	var name string
	eventually(t, 30*time.Second, "a synchronous standby", func() error {
		view, err := c.access(t).Cluster(context.Background())
		if err != nil {
			return err
		}
		for _, m := range view.Members {
			if m.Role == "sync_standby" && m.State == "streaming" {
				name = m.Name
				return nil
			}
		}
		return fmt.Errorf("none in %+v", view.Members)
	})
	return name
}
