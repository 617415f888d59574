package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/backup"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
)

// backupJSON runs pgha backup -o json and returns the backup it took.
func (c *cluster) backup(t *testing.T, typ string) backup.Backup {
	t.Helper()
	r := mustPgha(t, "backup", "--name", c.name, "--type", typ, "-o", "json")
	var b backup.Backup
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		t.Fatalf("backup -o json: %v\n%s", err, r)
	}
	if b.Type != typ || b.Label == "" || b.Size <= 0 {
		t.Fatalf("backup --type %s gave %+v", typ, b)
	}
	return b
}

type backupListJSON struct {
	Backups    []backup.Backup `json:"backups"`
	Restorable *backup.Window  `json:"restorable"`
}

func (c *cluster) backupList(t *testing.T) backupListJSON {
	t.Helper()
	r := mustPgha(t, "backup", "list", "--name", c.name, "-o", "json")
	var l backupListJSON
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("backup list -o json: %v\n%s", err, r)
	}
	return l
}

// rows returns the values of table pitr on a node, in order.
func (c *cluster) rows(t *testing.T, node string) string {
	t.Helper()
	sec, _ := c.secrets(t)
	n, _ := c.topo.PatroniNode(node)
	conn := connect(t, n.PGPort, sec.SuperuserPassword)
	var v string
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(string_agg(v, ',' ORDER BY v), '') FROM pitr`).Scan(&v); err != nil {
		t.Fatalf("reading pitr on %s: %v", node, err)
	}
	return v
}

func (c *cluster) primaryConn(t *testing.T) (string, func(string)) {
	t.Helper()
	primary, _ := c.access(t).Primary(context.Background())
	if primary == "" {
		t.Fatal("no primary")
	}
	sec, _ := c.secrets(t)
	n, _ := c.topo.PatroniNode(primary)
	conn := connect(t, n.PGPort, sec.SuperuserPassword)
	return primary, func(sql string) {
		t.Helper()
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s on %s: %v", sql, primary, err)
		}
	}
}

// Backups, point-in-time restore, refusals that change nothing, and a replica
// rebuilt through pgBackRest.
func TestBackupAndRestore(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 3).withoutRouter()
	mustPgha(t, c.upArgs()...)

	// WAL archiving works from the start; verify says so.
	rep, _ := c.verify(t)
	if !rep.OK {
		t.Fatalf("verify on a new cluster: %s", failedRows(rep))
	}
	archived := false
	for _, ch := range rep.Checks {
		archived = archived || (ch.Name == "WAL archived to the object store" && ch.OK)
	}
	if !archived {
		t.Errorf("no passing WAL archiving check in %+v", rep.Checks)
	}

	t.Run("restore with no backup", func(t *testing.T) {
		r := pgha(t, nil, "restore", "--name", c.name, "--latest", "--yes")
		if r.code != 1 || !strings.Contains(r.stderr, "holds no backup") {
			t.Errorf("restore with no backup: %s", r)
		}
	})

	_, exec := c.primaryConn(t)
	exec(`CREATE TABLE pitr (v text)`)
	exec(`INSERT INTO pitr VALUES ('A')`)
	full := c.backup(t, backup.Full)
	exec(`INSERT INTO pitr VALUES ('B')`)
	time.Sleep(1100 * time.Millisecond)
	target := time.Now()
	time.Sleep(1100 * time.Millisecond)
	exec(`INSERT INTO pitr VALUES ('C')`)

	t.Run("incremental backup depends on the full", func(t *testing.T) {
		incr := c.backup(t, backup.Incr)
		if incr.Prior != full.Label {
			t.Errorf("incr %s depends on %q, want %s", incr.Label, incr.Prior, full.Label)
		}
		l := c.backupList(t)
		if len(l.Backups) != 2 || l.Backups[0].Label != full.Label || l.Backups[1].Label != incr.Label || l.Backups[1].Type != backup.Incr {
			t.Errorf("backup list: %+v", l.Backups)
		}
		if l.Restorable == nil || l.Restorable.Earliest.Before(full.Stop) {
			t.Errorf("restorable window %+v, full backup stopped at %s", l.Restorable, full.Stop)
		}
	})

	t.Run("replica rebuilt through pgBackRest", func(t *testing.T) {
		replica := c.aReplica(t)
		ctx := context.Background()
		if err := docker.ContainerRemove(ctx, c.name+"-"+replica, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		if err := docker.VolumeRemove(ctx, c.topo.VolumeName(replica), true); err != nil {
			t.Fatal(err)
		}
		mustPgha(t, c.upArgs()...)
		logs := containerLogs(t, c.name+"-"+replica, "all")
		if !strings.Contains(logs, "replica has been created using pgbackrest") {
			t.Errorf("%s was not rebuilt by pgBackRest; its log:\n%s", replica, logs)
		}
		c.waitVerified(t)
		if got := c.rows(t, replica); got != "A,B,C" {
			t.Errorf("rebuilt %s has rows %q, want A,B,C", replica, got)
		}
	})

	t.Run("refusals change nothing", func(t *testing.T) {
		before := containerIDs(t, c.name)
		early := full.Start.Add(-time.Hour).Format(time.RFC3339)
		r := pgha(t, nil, "restore", "--name", c.name, "--to-time", early, "--yes")
		if r.code != 1 || !strings.Contains(r.stderr, "before the oldest backup") || !strings.Contains(r.stderr, "can be restored to") {
			t.Errorf("restore before the first backup: %s", r)
		}
		r = pgha(t, nil, "restore", "--name", c.name, "--to-time", target.Format(time.RFC3339Nano)) // no --yes, no terminal
		if r.code != 2 || !strings.Contains(r.stderr, "--yes") {
			t.Errorf("restore without --yes off a terminal: %s", r)
		}
		// The object store down: backup fails clearly, earlier backups stay.
		store := c.name + "-versitygw"
		if err := docker.ContainerStop(context.Background(), store, container.StopOptions{}); err != nil {
			t.Fatal(err)
		}
		r = pgha(t, nil, "backup", "--name", c.name)
		if r.code != 1 || !strings.Contains(r.stderr, store) || !strings.Contains(r.stderr, "cannot be reached") {
			t.Errorf("backup with the object store stopped: %s", r)
		}
		if err := docker.ContainerStart(context.Background(), store, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		if after := containerIDs(t, c.name); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("a refused command changed containers: %v -> %v", before, after)
		}
		if l := c.backupList(t); len(l.Backups) != 2 {
			t.Errorf("after the failed backup the repository lists %d backups, want 2", len(l.Backups))
		}
	})

	t.Run("point-in-time restore", func(t *testing.T) {
		r := mustPgha(t, "restore", "--name", c.name, "--to-time", target.Format(time.RFC3339Nano), "--yes")
		if !strings.Contains(r.stderr, "verified healthy") {
			t.Errorf("restore output: %s", r)
		}
		for _, n := range c.topo.Patroni {
			if got := c.rows(t, n.Name); got != "A,B" {
				t.Errorf("after restoring to B, %s has rows %q, want A,B", n.Name, got)
			}
		}
		rep, _ := c.verify(t)
		if !rep.OK {
			t.Errorf("after restore: %s", failedRows(rep))
		}
	})

	// A node's stale copy of an old timeline's segment must not block
	// archiving (pgBackRest refuses it forever); a conflict on the current
	// timeline must still fail. The copies are made outside pg_wal.
	t.Run("stale segment of an old timeline", func(t *testing.T) {
		primary, _ := c.access(t).Primary(context.Background())
		sec, _ := c.secrets(t)
		n, _ := c.topo.PatroniNode(primary)
		// A segment of the current timeline that the repository holds.
		archived, err := clients.ArchiveCurrentWAL(context.Background(), connect(t, n.PGPort, sec.SuperuserPassword), primary)
		if err != nil {
			t.Fatal(err)
		}
		current := strings.Fields(archived)[1] // "segment X archived in ..."
		push := func(segment string) string {
			t.Helper()
			const script = `d=$(mktemp -d); cd /var/lib/postgresql/pgha/data
cp pg_wal/*.history "$d"/ 2>/dev/null
src=$(ls pg_wal | grep -E '^[0-9A-F]{24}$' | grep -vx "$1" | sort | tail -n 1)
cp "pg_wal/$src" "$d/$1"
rc=0; pgha-pgbackrest-push "$d/$1" || rc=$?
rm -rf "$d"; echo "rc=$rc"`
			r, err := eng.Exec(context.Background(), c.name+"-"+primary, engine.ExecOptions{}, "sh", "-c", script, "sh", segment)
			if err != nil {
				t.Fatal(err)
			}
			return r.Stdout + r.Stderr
		}
		if out := push(full.WALStart); !strings.Contains(out, "rc=0") || !strings.Contains(out, "the repository's copy stands") {
			t.Errorf("a stale copy of %s (timeline 1) was not let go:\n%s", full.WALStart, out)
		}
		if out := push(current); !strings.Contains(out, "rc=45") {
			t.Errorf("a conflicting copy of %s (the current timeline) did not fail with 45:\n%s", current, out)
		}
	})
}
