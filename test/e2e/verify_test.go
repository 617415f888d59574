package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/verify"
)

// verifyReport runs pgha verify -o json and decodes it.
func (c *cluster) verify(t *testing.T) (verify.Report, result) {
	t.Helper()
	r := pgha(t, nil, "verify", "--name", c.name, "-o", "json", "--timeout", "10s")
	var rep verify.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("verify -o json is not JSON: %v\n%s", err, r)
	}
	if (r.code == 0) != rep.OK {
		t.Fatalf("verify exit code %d disagrees with ok=%v", r.code, rep.OK)
	}
	return rep, r
}

func failedRows(rep verify.Report) string {
	var s []string
	for _, c := range rep.Failed() {
		s = append(s, fmt.Sprintf("%s/%s: %s", c.Group, c.Name, c.Detail))
	}
	return strings.Join(s, "\n")
}

// One cluster for verify, inspect and env, then faults that verify must name.
func TestVerifyInspectEnv(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 3)
	c.up(t)
	ctx := context.Background()

	rep, r := c.verify(t)
	if !rep.OK || r.code != 0 {
		t.Fatalf("verify on a fresh cluster failed:\n%s\n%s", failedRows(rep), r)
	}
	groups := map[string]int{}
	primary := ""
	for _, ck := range rep.Checks {
		groups[ck.Group]++
		if ck.Name == "one primary" {
			primary = ck.Detail
		}
		if ck.Name == "" || ck.Detail == "" || ck.DurationMS < 0 {
			t.Errorf("check with empty fields: %+v", ck)
		}
	}
	if groups["etcd"] != 6 || groups["patroni"] != 5 || groups["postgres"] != 6 || groups["objectstore"] != 2 || groups["router"] != 3 {
		t.Errorf("checks per group = %v", groups)
	}
	if primary != "patroni2" {
		t.Errorf("verify's primary = %q", primary)
	}
	table := mustPgha(t, "verify", "--name", c.name)
	if !strings.Contains(table.stdout, "marker row replicated") || !strings.Contains(table.stdout, "WAL archived to the object store") || !strings.Contains(table.stderr, "all 22 checks passed") {
		t.Errorf("verify table:\n%s", table)
	}

	t.Run("inspect etcd keys", func(t *testing.T) {
		r := mustPgha(t, "inspect", "etcd", "keys", "--name", c.name, "-o", "json")
		var keys []clients.EtcdKey
		if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		byName := map[string]clients.EtcdKey{}
		for _, k := range keys {
			if !strings.HasPrefix(k.Key, "/service/pg-cluster/") || k.ModRevision == 0 {
				t.Errorf("key %+v", k)
			}
			byName[k.Name] = k
		}
		for _, want := range []string{"leader", "initialize", "config", "members/patroni1", "members/patroni2", "members/patroni3"} {
			if _, ok := byName[want]; !ok {
				t.Errorf("no key %s", want)
			}
		}
		leader := byName["leader"]
		if leader.Value != primary || leader.Lease == 0 || leader.TTLSeconds <= 0 || leader.TTLSeconds > 30 {
			t.Errorf("leader key = %+v, want %s with a live lease", leader, primary)
		}
		var member struct {
			State string `json:"state"`
			Role  string `json:"role"`
		}
		if err := json.Unmarshal(byName["members/"+primary].JSON, &member); err != nil || member.Role != "primary" {
			t.Errorf("members/%s decoded = %+v, %v", primary, member, err)
		}
		full := mustPgha(t, "inspect", "etcd", "keys", "--name", c.name, "--values")
		if !strings.Contains(full.stdout, `"conn_url": "postgres://patroni1:5432/postgres"`) || !strings.Contains(full.stdout, "s left)") {
			t.Errorf("--values output:\n%s", full.stdout)
		}
	})

	t.Run("inspect cluster", func(t *testing.T) {
		r := mustPgha(t, "inspect", "cluster", "--name", c.name, "-o", "json")
		var view clients.ClusterView
		if err := json.Unmarshal([]byte(r.stdout), &view); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		if len(view.Members) != 3 || view.Members[0].Name != primary || view.Members[0].Role != "leader" {
			t.Fatalf("members = %+v, want %s first as leader", view.Members, primary)
		}
		for _, m := range view.Members[1:] {
			if m.Role != "replica" || m.Timeline != 1 || m.Host == "" {
				t.Errorf("member %+v", m)
			}
		}
	})

	t.Run("env", func(t *testing.T) {
		script := fmt.Sprintf(`set -e; eval "$(%s env --name %s)"; psql -XtAc 'SELECT pg_is_in_recovery()'; echo "$DATABASE_URL"`, pghaBin, c.name)
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("eval env; psql: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2 || lines[0] != "f" {
			t.Fatalf("psql through pgha env: %q", out)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, lines[1])
		if err != nil {
			t.Fatalf("pgx with DATABASE_URL: %v", err)
		}
		defer conn.Close(ctx)
		var inRecovery bool
		if err := conn.QueryRow(cctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
			t.Errorf("DATABASE_URL reached a node in recovery (%v, %v)", inRecovery, err)
		}
	})

	t.Run("killed replica", func(t *testing.T) {
		victim := c.name + "-patroni1"
		if err := docker.ContainerKill(ctx, victim, "SIGKILL"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, r := c.verify(t)
		if r.code != 1 || rep.OK {
			t.Fatalf("verify passed with %s killed", victim)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("verify took %s, past its 10s timeout", took)
		}
		failed := failedRows(rep)
		if !strings.Contains(failed, "patroni/patroni1: REST API not answering") || !strings.Contains(failed, "container "+victim+" is exited (137)") {
			t.Errorf("failing rows do not name the killed node:\n%s", failed)
		}
		for _, ck := range rep.Failed() {
			if ck.Group == "etcd" || ck.Group == "objectstore" {
				t.Errorf("unrelated check failed: %+v", ck)
			}
		}
		if strings.Contains(r.stderr+r.stdout, "goroutine") {
			t.Errorf("stack trace in output:\n%s", r)
		}
		if err := docker.ContainerStart(ctx, victim, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		c.waitVerified(t)
	})

	t.Run("stopped etcd member", func(t *testing.T) {
		victim := c.name + "-etcd3"
		if err := docker.ContainerStop(ctx, victim, container.StopOptions{}); err != nil {
			t.Fatal(err)
		}
		// Once the remaining members agree on a leader (an election follows
		// when the stopped member led), only etcd3's row fails.
		eventually(t, 20*time.Second, "verify to fail on etcd3 alone", func() error {
			rep, _ := c.verify(t)
			if rep.OK {
				return fmt.Errorf("verify passed with %s stopped", victim)
			}
			for _, ck := range rep.Checks {
				switch {
				case ck.Group == "etcd" && ck.Name == "member etcd3":
					if ck.OK || !strings.Contains(ck.Detail, "etcd3 unreachable") || !strings.Contains(ck.Detail, "container "+victim+" is exited") {
						return fmt.Errorf("etcd3 row: %+v", ck)
					}
				case !ck.OK:
					return fmt.Errorf("also failed: %s/%s: %s", ck.Group, ck.Name, ck.Detail)
				}
			}
			return nil
		})
		if err := docker.ContainerStart(ctx, victim, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		c.waitVerified(t)
	})

	t.Run("stopped object store", func(t *testing.T) {
		victim := c.name + "-versitygw"
		if err := docker.ContainerStop(ctx, victim, container.StopOptions{}); err != nil {
			t.Fatal(err)
		}
		rep, _ := c.verify(t)
		failed := failedRows(rep)
		if rep.OK || !strings.Contains(failed, "objectstore/authenticated S3 over TLS: versitygw") || !strings.Contains(failed, "container "+victim+" is exited") {
			t.Errorf("failing rows:\n%s", failed)
		}
		mustPgha(t, c.upArgs()...) // up starts it again, TLS files and all
		c.waitVerified(t)
	})
}

// waitVerified waits until pgha verify passes.
func (c *cluster) waitVerified(t *testing.T) {
	t.Helper()
	eventually(t, 90*time.Second, "verify to pass again", func() error {
		rep, _ := c.verify(t)
		if !rep.OK {
			return fmt.Errorf("failing: %s", failedRows(rep))
		}
		return nil
	})
}
