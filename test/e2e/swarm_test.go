package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/hosts"
	"github.com/pgha/pgha/pkg/topology"
)

// testSwarm runs the cluster across three Docker hosts on Swarm, the hosts
// being engines in containers made by `pgha hosts create`: placement (read
// from the swarm, not from pgha), credentials only as Swarm secrets, verify,
// a kill fenced by the guard of the primary's host, a host that dies with
// its primary (strict synchronous mode: nothing acknowledged lost) and
// comes back with its members, a backup and a point-in-time restore, then down -v and hosts
// delete leaving nothing.
func testSwarm(t *testing.T) {
	ctx := context.Background()
	prefix := newTestHosts(t, "sw-e2e")
	c := newCluster(t, 3, 3) // its cleanup (down -v) runs before the hosts go

	// Bad input is a usage error before anything is made.
	for _, args := range [][]string{{"hosts", "create", "--prefix", "Bad_Prefix"}, {"hosts", "create", "0"},
		{"hosts", "create", "3", "--ports", "h4=15000"}, {"hosts", "delete", "--prefix", "../x"}} {
		if r := pgha(t, nil, args...); r.code != 2 || !strings.Contains(r.stderr, "error:") {
			t.Errorf("pgha %s: want a usage error (exit 2): %s", strings.Join(args, " "), r)
		}
	}

	// Each host publishes the ports of the members up --swarm places on it:
	// hosts create plans them from the same topology flags (etcdN and
	// patroniN on hN, the object store and the router on h1).
	topo := c.topo
	args := []string{"hosts", "create", "3", "--prefix", prefix, "--name", c.name, "--port-offset", fmt.Sprint(c.offset), "-o", "json"}
	start := time.Now()
	r := mustPgha(t, args...)
	t.Logf("pgha hosts create 3: %s", time.Since(start).Round(100*time.Millisecond))
	created := checkHostsCreated(t, r, [][]int{
		{topo.Etcd[0].ClientPort, topo.Patroni[0].PGPort, topo.Patroni[0].RESTPort, topo.ObjectStore.APIPort, topo.RouterPorts.Primary, topo.RouterPorts.Replicas, topo.RouterPorts.Stats},
		{topo.Etcd[1].ClientPort, topo.Patroni[1].PGPort, topo.Patroni[1].RESTPort},
		{topo.Etcd[2].ClientPort, topo.Patroni[2].PGPort, topo.Patroni[2].RESTPort},
	})
	checkHostsListed(t, prefix)
	// Creating again changes nothing.
	start = time.Now()
	again := mustPgha(t, append(args, "--image-load=false")...)
	checkHostsSame(t, created, again)
	t.Logf("pgha hosts create again: %s", time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	r = mustPgha(t, append(c.upArgs(), "--swarm", "--hosts", prefix, "--sync", "strict", "--timeout", "5m")...)
	t.Logf("pgha up --swarm: %s\n%s", time.Since(start).Round(100*time.Millisecond), r.stderr)

	// The swarm's own word on where each member runs.
	sw, err := hosts.Inspect(ctx, docker, prefix)
	if err != nil {
		t.Fatal(err)
	}
	manager := innerClient(t, sw, "h1")
	// pgha's images were loaded into every host, the same as on this machine.
	patroniRef := imageRef(t, "patroni")
	patroni, err := docker.ImageInspect(ctx, patroniRef)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range sw.Hosts {
		if im, err := innerClient(t, sw, h.Name).ImageInspect(ctx, patroniRef); err != nil || im.ID != patroni.ID {
			t.Errorf("host %s: the Patroni image is %q (%v), want %s", h.Name, im.ID, err, patroni.ID)
		}
	}
	for _, kind := range []string{"etcd", "patroni"} {
		for i := 1; i <= 3; i++ {
			member := fmt.Sprintf("%s%d", kind, i)
			if got := taskNode(t, manager, c.name+"-"+member); got != hosts.HostName(i) {
				t.Errorf("%s runs on %q, want %s", member, got, hosts.HostName(i))
			}
		}
	}
	// Credentials are Swarm secrets, never in a service's environment.
	pw := superuserPassword(t, c.name)
	svcs, err := manager.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", topology.LabelCluster+"="+c.name))})
	if err != nil || len(svcs) < 7 {
		t.Fatalf("services of %s: %d (%v)", c.name, len(svcs), err)
	}
	secretRefs := 0
	for _, s := range svcs {
		_, raw, err := manager.ServiceInspectWithRaw(ctx, s.ID, swarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), pw) {
			t.Errorf("service %s shows the superuser password in docker service inspect", s.Spec.Name)
		}
		secretRefs += len(s.Spec.TaskTemplate.ContainerSpec.Secrets)
		if rp := s.Spec.TaskTemplate.RestartPolicy; rp == nil || rp.Condition != swarm.RestartPolicyConditionNone {
			t.Errorf("service %s restarts its tasks (%+v): a failover test would be undone", s.Spec.Name, rp)
		}
	}
	if secretRefs == 0 {
		t.Error("no service uses a Swarm secret")
	}

	mustPgha(t, "verify", "--name", c.name)

	t.Run("kill primary, guard", func(t *testing.T) {
		rep := c.failover(t, "failover-test", "--fault", "kill")
		d := rep.Guard.Decision
		if d == nil || d.Member != rep.Target || d.Outcome != guard.OutcomeDeleted {
			t.Fatalf("the guard on the primary's host did not fence it: %+v", d)
		}
		// The lease is 20 s: a new leader well before it is the guard's doing.
		if rep.NewLeaderSec <= 0 || rep.NewLeaderSec > 8 {
			t.Errorf("new leader after %.2fs, want within 8 s", rep.NewLeaderSec)
		}
		if rep.LostAcked != 0 {
			t.Errorf("acknowledged writes lost: %d", rep.LostAcked)
		}
		t.Logf("guard: %s (%.0f ms after the event)", d.Reason, d.DecisionMs)
	})

	var ran []string // every container the hosts ran after the host-down
	hostDown := t.Run("host-down of the primary's host, strict synchronous mode", func(t *testing.T) {
		rep := c.failover(t, "failover-test", "--fault", "host-down", "--timeout", "150s")
		// No engine reports a dead host: the lease (ttl 20 s) decides.
		if rep.NewPrimary == rep.OldPrimary || rep.NewLeaderSec <= 0 || rep.NewLeaderSec > 35 {
			t.Errorf("%s -> %s, new leader after %.2fs: want a new primary within the lease", rep.OldPrimary, rep.NewPrimary, rep.NewLeaderSec)
		}
		if rep.LostAcked != 0 || rep.Audit.Acked == 0 {
			t.Errorf("strict synchronous mode: %d acknowledged writes lost of %d", rep.LostAcked, rep.Audit.Acked)
		}
		if rep.RejoinSec <= 0 || !rep.VerifiedAfter {
			t.Errorf("the host's member did not rejoin (rejoin %.2fs, verified %v)", rep.RejoinSec, rep.VerifiedAfter)
		}
		// The containers that died with the host, among the others: the
		// swarm may remove them before the hosts go, yet their cgroups
		// must not stay on this machine (checked after the delete).
		ran = innerContainerIDs(t, sw)
	})

	t.Run("backup and point-in-time restore", func(t *testing.T) {
		mustPgha(t, "backup", "--name", c.name)
		url := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres", pw, topo.RouterPorts.Primary)
		exec := func(sql string) (n int) {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			conn, err := pgx.Connect(cctx, url+"?sslmode=disable&connect_timeout=5")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(cctx)
			if strings.HasPrefix(sql, "SELECT") {
				err = conn.QueryRow(cctx, sql).Scan(&n)
			} else {
				_, err = conn.Exec(cctx, sql)
			}
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			return n
		}
		exec("CREATE TABLE pitr(x int); INSERT INTO pitr VALUES (1)")
		time.Sleep(1500 * time.Millisecond)
		target := time.Now().UTC().Format(time.RFC3339)
		time.Sleep(1500 * time.Millisecond)
		exec("INSERT INTO pitr VALUES (2)")
		mustPgha(t, "restore", "--name", c.name, "--to-time", target, "-y", "--timeout", "6m")
		if got := exec("SELECT count(*) FROM pitr"); got != 1 {
			t.Errorf("after the restore to %s: %d rows, want 1", target, got)
		}
	})

	t.Run("down -v and hosts delete leave nothing", func(t *testing.T) {
		mustPgha(t, "down", "-v", "--name", c.name)
		for _, h := range sw.Hosts {
			cli := innerClient(t, sw, h.Name)
			f := filters.NewArgs(filters.Arg("label", topology.LabelCluster+"="+c.name))
			cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
			vs, _ := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
			ns, _ := cli.NetworkList(ctx, network.ListOptions{Filters: f})
			if len(cs)+len(vs.Volumes)+len(ns) != 0 {
				t.Errorf("%s keeps %d containers, %d volumes, %d networks of %s", h.Name, len(cs), len(vs.Volumes), len(ns), c.name)
			}
		}
		f := filters.NewArgs(filters.Arg("label", topology.LabelCluster+"="+c.name))
		left, _ := manager.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
		secs, _ := manager.SecretList(ctx, swarm.SecretListOptions{Filters: f})
		if len(left)+len(secs) != 0 {
			t.Errorf("the swarm keeps %d services and %d secrets of %s", len(left), len(secs), c.name)
		}
		start := time.Now()
		mustPgha(t, "hosts", "delete", "--prefix", prefix)
		t.Logf("pgha hosts delete: %s", time.Since(start).Round(100*time.Millisecond))
		if len(ran) == 0 && hostDown { // a failed host-down has said why already
			t.Error("no inner container listed after the host-down")
		}
		checkHostsGone(t, prefix, filepath.Join(stateDir, "hosts", prefix), ran)
		// Nothing to delete is not an error.
		if r := mustPgha(t, "hosts", "delete", "--prefix", prefix); !strings.Contains(r.stderr, "Nothing to delete") {
			t.Errorf("a second delete says:\n%s", r.stderr)
		}
	})
}

// taskNode is the host name of the node that runs the service's running task.
func taskNode(t *testing.T, manager *client.Client, service string) string {
	t.Helper()
	ctx := context.Background()
	ts, err := manager.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatalf("tasks of %s: %v", service, err)
	}
	for _, task := range ts {
		if task.Status.State != swarm.TaskStateRunning {
			continue
		}
		n, _, err := manager.NodeInspectWithRaw(ctx, task.NodeID)
		if err != nil {
			t.Fatal(err)
		}
		return n.Description.Hostname
	}
	return ""
}

// superuserPassword reads the cluster's generated superuser password from
// its state directory.
func superuserPassword(t *testing.T, cluster string) string {
	t.Helper()
	out := mustPgha(t, "env", "--name", cluster).stdout
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "export PGPASSWORD="); ok {
			return strings.Trim(v, "'\"")
		}
	}
	t.Fatalf("pgha env prints no PGPASSWORD:\n%s", out)
	return ""
}
