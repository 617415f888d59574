package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/minio/minio-go/v7"
	"github.com/pgha/pgha/pkg/backup"
	"github.com/pgha/pgha/pkg/failover"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// patroniContainers counts the cluster's Patroni containers on the engine.
func (c *cluster) patroniContainers(t *testing.T) int {
	t.Helper()
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", topology.LabelCluster+"="+c.name), filters.Arg("label", topology.LabelRole+"="+topology.RolePatroni))})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

// volumes lists the cluster's Patroni data volumes.
func (c *cluster) dataVolumes(t *testing.T) []string {
	t.Helper()
	var out []string
	vs, err := docker.VolumeList(context.Background(), volumeFilter(c.name))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Volumes {
		if strings.Contains(v.Name, "-patroni") {
			out = append(out, v.Name)
		}
	}
	sort.Strings(out)
	return out
}

// A restore cannot lose the cluster: --latest under a running writer keeps
// every write acknowledged before the restore; a restore interrupted after
// the old containers are gone is completed by running restore again (and up
// refuses to bootstrap over it); a restore whose recovery fails leaves the
// cluster on its old data.
func TestRestoreSafety(t *testing.T) {
	parallel(t)
	c := newCluster(t, 1, 2).withoutRouter()
	c.up(t)
	_, exec0 := c.primaryConn(t)
	exec0(`CREATE TABLE pitr (v text)`)
	exec0(`INSERT INTO pitr VALUES ('A')`)
	full := c.backup(t, backup.Full)

	t.Run("latest under writes keeps every acknowledged write", func(t *testing.T) {
		w := failover.NewWriter(c.access(t), "restore_writes")
		if err := w.Setup(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		time.Sleep(time.Second)
		r := mustPgha(t, "restore", "--name", c.name, "--latest", "--yes")
		time.Sleep(500 * time.Millisecond)
		stop()
		<-done
		audit, err := w.AuditWrites(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("writes acked %d, failed %d, unknown %d, lost %d", audit.Acked, audit.Failed, audit.Unknown, len(audit.Lost))
		if len(audit.Lost) != 0 || audit.Acked < 50 {
			t.Errorf("after restore --latest: %d acknowledged writes lost of %d\n%s", len(audit.Lost), audit.Acked, r.stderr)
		}
		if !strings.Contains(r.stderr, "Writes stopped on") || !strings.Contains(r.stderr, "Removing the data from before the restore") {
			t.Errorf("restore's steps:\n%s", r.stderr)
		}
		// The restored data lives in the next generation's volumes; the old ones are gone.
		if v := c.dataVolumes(t); len(v) != 2 || !strings.HasSuffix(v[0], "-data-r1") {
			t.Errorf("data volumes after the restore: %v", v)
		}
		if got := c.rows(t, "patroni1"); got != "A" {
			t.Errorf("rows %q", got)
		}
	})

	t.Run("interrupted after the old containers are gone", func(t *testing.T) {
		cmd := exec.Command(pghaBin, "restore", "--name", c.name, "--latest", "--yes")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for c.patroniContainers(t) == len(c.topo.Patroni) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		t.Logf("restore killed:\n%s", out.String())
		store, _ := secrets.For(c.name)
		if _, err := os.Stat(filepath.Join(store.Dir, secrets.PendingRestoreFile)); err != nil {
			t.Fatalf("no pending restore recorded: %v", err)
		}
		if r := pgha(t, nil, append(c.upArgs(), "--timeout", "1m")...); r.code != 1 || !strings.Contains(r.stderr, "did not finish") {
			t.Errorf("up over a pending restore: %s", r)
		}
		r := mustPgha(t, "restore", "--name", c.name, "--yes")
		if !strings.Contains(r.stderr, "Completing the restore") || !strings.Contains(r.stderr, "verified healthy") {
			t.Errorf("re-run: %s", r)
		}
		if rep, _ := c.verify(t); !rep.OK {
			t.Errorf("after completing: %s", failedRows(rep))
		}
		if v := c.dataVolumes(t); len(v) != 2 || !strings.HasSuffix(v[0], "-data-r2") {
			t.Errorf("data volumes after completing: %v", v)
		}
	})

	t.Run("a failed recovery leaves the old cluster", func(t *testing.T) {
		_, exec1 := c.primaryConn(t)
		full2 := c.backup(t, backup.Full)
		exec1(`INSERT INTO pitr VALUES ('B')`)
		time.Sleep(1100 * time.Millisecond)
		target := time.Now()
		time.Sleep(1100 * time.Millisecond)
		exec1(`INSERT INTO pitr VALUES ('C')`)
		if rep, _ := c.verify(t); !rep.OK { // archives the segment holding B and C
			t.Fatalf("verify: %s", failedRows(rep))
		}
		// Cut the archive: every segment after the backup is deleted, so the
		// replay to the target cannot reach it.
		s3, err := c.access(t).S3()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		cut := 0
		for obj := range s3.ListObjects(ctx, c.topo.ObjectStore.Bucket, minio.ListObjectsOptions{Prefix: strings.TrimPrefix(c.topo.RepoPath(), "/") + "/archive/", Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			seg := filepath.Base(obj.Key)
			if len(seg) >= 24 && seg[:24] > full2.WALStop && !strings.Contains(seg, ".history") {
				if err := s3.RemoveObject(ctx, c.topo.ObjectStore.Bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
					t.Fatal(err)
				}
				cut++
			}
		}
		if cut == 0 {
			t.Fatalf("no archived segment after %s to cut", full2.WALStop)
		}
		before := c.dataVolumes(t)
		r := pgha(t, nil, "restore", "--name", c.name, "--to-time", target.Format(time.RFC3339Nano), "--yes", "--timeout", "75s")
		if r.code != 1 || !strings.Contains(r.stderr, "back on its data from before the restore") {
			t.Fatalf("a restore whose recovery fails: %s", r)
		}
		t.Logf("the failed restore said:\n%s", r.stderr)
		if got := c.rows(t, "patroni1"); got != "A,B,C" {
			t.Errorf("after the failed restore the rows are %q, want A,B,C (the old data)", got)
		}
		if rep, _ := c.verify(t); !rep.OK {
			t.Errorf("after the failed restore: %s", failedRows(rep))
		}
		if after := c.dataVolumes(t); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Errorf("data volumes %v, want the old ones %v", after, before)
		}
		if r := pgha(t, nil, "restore", "--name", c.name, "--yes"); r.code != 2 {
			t.Errorf("no restore should be pending: %s", r)
		}
		_ = full
	})
}

func volumeFilter(name string) volume.ListOptions {
	return volume.ListOptions{Filters: clusterFilter(name)}
}
