package e2e

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	pghacluster "github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/failover"
	"github.com/pgha/pgha/pkg/topology"
)

// The day-2 commands (issue 13) on one cluster, in an order where each
// leaves it healthy for the next: psql, logs, report, config, pause and
// resume around a kill, history, a rolling restart under writes, reinit,
// scale 3→5→3.
func TestDay2(t *testing.T) {
	parallel(t)
	c := newGrowingCluster(t, 3, 3, 5) // scale 3→5→3
	c.up(t)
	name := []string{"--name", c.name}
	acc := c.access(t)
	sec, _ := c.secrets(t)

	t.Run("missing cluster and member", func(t *testing.T) {
		for _, args := range [][]string{
			{"psql"}, {"logs"}, {"report"}, {"pause"}, {"resume"}, {"restart", "--rolling"}, {"reinit", "patroni1"},
			{"history"}, {"config", "show"}, {"config", "set", "ttl=30", "--yes"}, {"scale", "--patroni", "4"}, {"status", "--watch"},
		} {
			r := pgha(t, nil, append(args, "--name", "d2-none")...)
			if r.code == 0 || !strings.Contains(r.stderr, `cluster "d2-none" does not exist`) {
				t.Errorf("pgha %v on a missing cluster: want a clear error\n%s", args, r)
			}
		}
		for _, args := range [][]string{{"psql", "patroni9"}, {"logs", "nope"}, {"reinit", "etcd1"}, {"restart", "patroni7"}} {
			r := pgha(t, nil, append(args, name...)...)
			if r.code == 0 || !strings.Contains(r.stderr, "is not a") || !strings.Contains(r.stderr, "member") {
				t.Errorf("pgha %v: want a not-a-member error\n%s", args, r)
			}
		}
	})

	t.Run("psql", func(t *testing.T) {
		primary, _ := acc.Primary(context.Background())
		q := []string{"--", "-Atc", "SELECT pg_read_file('/etc/hostname') || pg_is_in_recovery()"}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"patroni3"}, "patroni3\ntrue"},
			{[]string{"--primary"}, primary + "\nfalse"},
			{nil, primary + "\nfalse"},
			{[]string{"--replica"}, "\ntrue"},
		} {
			r := mustPgha(t, append(append(append([]string{"psql"}, tc.args...), name...), q...)...)
			got := strings.TrimSpace(r.stdout)
			// --replica may pick any streaming replica: its name is not checked.
			if ok := got == tc.want || slices.Equal(tc.args, []string{"--replica"}) && strings.HasSuffix(got, tc.want); !ok {
				t.Errorf("psql %v: got %q, want %q", tc.args, got, tc.want)
			}
			if strings.Contains(r.stdout+r.stderr, sec.SuperuserPassword) {
				t.Errorf("psql %v printed the password", tc.args)
			}
		}
	})

	t.Run("logs", func(t *testing.T) {
		r := mustPgha(t, append([]string{"logs", "patroni1", c.name + "-etcd2", "--tail", "5"}, name...)...)
		seen := map[string]int{}
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			member, _, ok := strings.Cut(l, " | ")
			member = strings.TrimSpace(member)
			if !ok || member != "patroni1" && member != "etcd2" {
				t.Fatalf("a line not from the asked members: %q\n%s", l, r.stdout)
			}
			seen[member]++
		}
		if seen["patroni1"] != 5 || seen["etcd2"] != 5 {
			t.Errorf("want 5 lines of each member, got %v", seen)
		}
	})

	t.Run("status watch off a terminal", func(t *testing.T) {
		cmd := exec.Command(pghaBin, append([]string{"status", "--watch", "--interval", "300ms"}, name...)...)
		var out, errb syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A snapshot per interval: 3 within 15 s even on a busy machine,
		// where one snapshot (etcd, every REST API, the engine) can take
		// a second.
		start := time.Now()
		for time.Since(start) < 15*time.Second && strings.Count(out.String(), "# cluster "+c.name) < 3 {
			time.Sleep(100 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("status --watch ended with %v after Ctrl-C (want exit 0)\n%s%s", err, out.String(), errb.String())
		}
		frames := strings.Count(out.String(), "# cluster "+c.name)
		if frames < 3 || !strings.Contains(out.String(), "MEMBER\tROLE\tSTATE\tTL\tLAG\tPORTS") || !strings.Contains(out.String(), "running, streaming") {
			t.Errorf("want a snapshot per interval (%d in %s):\n%s", frames, time.Since(start).Round(100*time.Millisecond), out.String())
		}
	})

	t.Run("status watch on a terminal", func(t *testing.T) {
		tm := newTmux(t)
		ctx := context.Background()
		// pgha runs as the pane's own process (a shell around it would take
		// the Ctrl-C too and die with it): the pane keeps its exit status.
		start := append([]string{"new-session", "-d", "-s", "watch", "-x", "100", "-y", "40",
			"-e", "NO_COLOR=", "-e", "PGHA_STATE_DIR=" + stateDir, pghaBin, "status", "--watch"}, name...)
		if out, err := tm.command(ctx, start...).CombinedOutput(); err != nil {
			t.Fatalf("tmux new-session: %v: %s", err, out)
		}
		time.Sleep(2500 * time.Millisecond)
		out, err := tm.command(ctx, "capture-pane", "-p", "-J", "-t", "watch").Output()
		if err != nil {
			t.Fatal(err)
		}
		screen := strings.TrimRight(string(out), "\n ") + "\n"
		if err := tm.command(ctx, "send-keys", "-t", "watch", "C-c").Run(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "status --watch to end on Ctrl-C", func() error {
			out, err := tm.command(ctx, "display-message", "-p", "-t", "watch", "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}").Output()
			// Exit 0, not killed by a signal. tmux 3.3a (Debian bookworm)
			// sometimes records neither status nor signal for a process that
			// ends as its pane closes ("1::"); exit 0 after SIGINT itself is
			// checked off a terminal above.
			if got := strings.TrimSpace(string(out)); err != nil || (got != "1:0:" && got != "1::") {
				return fmt.Errorf("pane dead:status:signal %q (%v)", strings.TrimSpace(string(out)), err)
			}
			return nil
		})
		if problems := checkScreen(screen, 100); len(problems) > 0 {
			t.Errorf("the live view at 100 columns:\n  %s\n%s", strings.Join(problems, "\n  "), screen)
		}
		for _, want := range []string{"cluster " + c.name + " · ", " · leader ", "│ MEMBER", "streaming", "Ctrl-C to leave"} {
			if !strings.Contains(screen, want) {
				t.Errorf("the live view lacks %q:\n%s", want, screen)
			}
		}
	})

	t.Run("report", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "r.tar.gz")
		mustPgha(t, append([]string{"report", "-f", file}, name...)...)
		files := readTarGz(t, file)
		want := []string{"version.txt", "topology.json", "status.json", "patroni/cluster.json", "patroni/history.json", "patroni/config.json", "etcd/keys.json"}
		for _, n := range c.topo.Patroni {
			want = append(want, "containers/"+n.Name+"/logs.txt", "containers/"+n.Name+"/inspect.json", "patroni/"+n.Name+".json",
				"postgres/"+n.Name+"/pg_settings.tsv", "postgres/"+n.Name+"/pg_stat_replication.tsv", "postgres/"+n.Name+"/pg_replication_slots.tsv")
		}
		for _, e := range c.topo.Etcd {
			want = append(want, "containers/"+e.Name+"/logs.txt", "containers/"+e.Name+"/inspect.json")
		}
		for _, w := range want {
			if _, ok := files[w]; !ok {
				t.Errorf("the report has no %s (has %d files)", w, len(files))
			}
		}
		secretsList := sec.Values()
		for f, data := range files {
			for _, s := range secretsList {
				if strings.Contains(data, s) {
					t.Errorf("%s holds a secret", f)
				}
			}
		}
		// Secrets reach containers as files, never as variables: inspect
		// carries none to redact, and the container's config is there.
		if !strings.Contains(files["containers/patroni1/inspect.json"], `"Image"`) || strings.Contains(files["containers/patroni1/inspect.json"], "PASSWORD=") {
			t.Errorf("inspect output of patroni1: missing, or with a password variable")
		}
		if !strings.Contains(files["postgres/patroni1/pg_settings.tsv"], "wal_level\treplica") {
			t.Errorf("pg_settings.tsv lacks wal_level")
		}
	})

	t.Run("config", func(t *testing.T) {
		if r := pgha(t, nil, append([]string{"config", "set", "ttl=10", "nope=1", "--yes"}, name...)...); r.code != 2 || !strings.Contains(r.stderr, "nope: not a key") {
			t.Errorf("config set of bad keys: want exit 2 and the reason\n%s", r)
		}
		r := mustPgha(t, append([]string{"config", "set", "postgresql.parameters.work_mem=16MB", "--yes"}, name...)...)
		if !strings.Contains(r.stdout, "+ postgresql.parameters.work_mem: 16MB") {
			t.Errorf("config set shows no diff:\n%s", r)
		}
		var cfg map[string]any
		r = mustPgha(t, append([]string{"config", "show", "-o", "json"}, name...)...)
		if err := json.Unmarshal([]byte(r.stdout), &cfg); err != nil {
			t.Fatal(err)
		}
		if p, _ := cfg["postgresql"].(map[string]any)["parameters"].(map[string]any); p["work_mem"] != "16MB" {
			t.Errorf("work_mem not in the dynamic configuration: %v", p)
		}
		eventually(t, 30*time.Second, "work_mem 16MB on a replica", func() error {
			r := pgha(t, nil, append([]string{"psql", "patroni3"}, append(name, "--", "-Atc", "SHOW work_mem")...)...)
			if strings.TrimSpace(r.stdout) != "16MB" {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
	})

	t.Run("pause stops failover", func(t *testing.T) {
		mustPgha(t, append([]string{"pause"}, name...)...)
		primary, _ := acc.Primary(context.Background())
		if err := docker.ContainerKill(context.Background(), c.name+"-"+primary, "KILL"); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		for time.Since(killed) < 12*time.Second {
			for _, n := range c.topo.Patroni {
				if st, err := acc.Patroni(context.Background(), n.Name); err == nil && st.Leading() {
					t.Fatalf("%s became the primary %s after the kill, while paused", n.Name, time.Since(killed).Round(time.Millisecond))
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		mustPgha(t, append([]string{"resume"}, name...)...)
		resumed := time.Now()
		var leader string
		eventually(t, 60*time.Second, "a new primary after resume", func() error {
			if leader, _ = acc.Primary(context.Background()); leader == "" {
				return fmt.Errorf("no primary yet")
			}
			return nil
		})
		t.Logf("paused: no leader for %s after the kill of %s; resumed: %s primary after %s", 12*time.Second, primary, leader, time.Since(resumed).Round(100*time.Millisecond))
		c.up(t) // starts the killed node again, as a replica
	})

	t.Run("history", func(t *testing.T) {
		r := mustPgha(t, append([]string{"history", "-o", "json"}, name...)...)
		var hist []clients.HistoryEntry
		if err := json.Unmarshal([]byte(r.stdout), &hist); err != nil || len(hist) == 0 {
			t.Fatalf("history after a failover: %v\n%s", err, r)
		}
		if last := hist[len(hist)-1]; last.NewLeader == "" || last.Timeline < 1 {
			t.Errorf("last history entry: %+v", last)
		}
		r = mustPgha(t, append([]string{"history"}, name...)...)
		if !strings.Contains(r.stdout, "TL\tLSN\tREASON") {
			t.Errorf("history table:\n%s", r)
		}
	})

	t.Run("rolling restart", func(t *testing.T) {
		ctx := context.Background()
		w := failover.NewWriter(acc, "day2_rolling")
		if err := w.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { w.Run(wctx); close(done) }()
		time.Sleep(time.Second)
		before, _ := acc.Primary(ctx)
		start := time.Now()
		mustPgha(t, append([]string{"restart", "--rolling"}, name...)...)
		took := time.Since(start)
		time.Sleep(time.Second)
		stop()
		<-done
		after, _ := acc.Primary(ctx)
		if after == before || after == "" {
			t.Errorf("primary %s before, %q after: want a switchover", before, after)
		}
		audit, err := w.AuditWrites(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(audit.Lost) > 0 || len(audit.Phantom) > 0 {
			t.Errorf("acknowledged writes lost: %v, phantom: %v", audit.Lost, audit.Phantom)
		}
		gaps := writeGaps(w.Writes(), 500*time.Millisecond)
		// Writes pause once: for the switchover. A replica restart must not
		// stop them.
		if len(gaps) > 1 {
			t.Errorf("writes paused %d times (%v): want one switchover's gap only", len(gaps), gaps)
		}
		// The same cluster's plain switchover, for scale.
		rep := c.failover(t, "switchover")
		var worst time.Duration
		for _, g := range gaps {
			worst = max(worst, g)
		}
		if limit := time.Duration(rep.UnavailableSec*float64(time.Second)) + 2*time.Second; worst > limit {
			t.Errorf("rolling restart's write gap %s exceeds one switchover's (%.2fs) by more than 2s", worst, rep.UnavailableSec)
		}
		t.Logf("rolling restart in %s: %d acked, 0 lost, %d unknown; write gaps > 0.5s: %v; a plain switchover's gap %.2fs",
			took.Round(100*time.Millisecond), audit.Acked, audit.Unknown, gaps, rep.UnavailableSec)
		_ = w.Drop(ctx)
	})

	t.Run("reinit", func(t *testing.T) {
		ctx := context.Background()
		primary, _ := acc.Primary(ctx)
		if r := pgha(t, nil, append([]string{"reinit", primary}, name...)...); r.code == 0 || !strings.Contains(r.stderr, "is the primary") {
			t.Errorf("reinit of the primary: want a refusal\n%s", r)
		}
		var replica string
		for _, n := range c.topo.Patroni {
			if n.Name != primary {
				replica = n.Name
			}
		}
		before, err := acc.Node(ctx, replica)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		mustPgha(t, append([]string{"reinit", replica}, name...)...)
		st, err := acc.Node(ctx, replica)
		if err != nil || !st.Streaming() || st.PostmasterStart == before.PostmasterStart {
			t.Fatalf("%s after reinit: %s, started %s (before %s)", replica, clients.Describe(st.PatroniState, err), st.PostmasterStart, before.PostmasterStart)
		}
		if !strings.Contains(containerLogs(t, c.name+"-"+replica, "300"), "reinitialize") {
			t.Errorf("%s's log says nothing of a reinitialize", replica)
		}
		t.Logf("reinit of %s: streaming again after %s", replica, time.Since(start).Round(100*time.Millisecond))
	})

	t.Run("scale 3 to 5 to 3", func(t *testing.T) {
		for _, n := range []int{5, 3} {
			start := time.Now()
			r := mustPgha(t, append([]string{"scale", "--patroni", fmt.Sprint(n), "-o", "json"}, name...)...)
			var res pghacluster.ScaleResult
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("scale -o json: %v\n%s", err, r)
			}
			took := time.Since(start)
			st := c.status(t)
			var nodes []string
			primaries, streaming := 0, 0
			for _, s := range st.Nodes {
				if s.Service != topology.RolePatroni {
					continue
				}
				nodes = append(nodes, s.Node)
				switch {
				case s.Role == clients.RolePrimary && s.Healthy:
					primaries++
				case s.Health == "streaming":
					streaming++
				}
			}
			if len(nodes) != n || primaries != 1 || streaming != n-1 {
				t.Fatalf("after scale to %d: status has %v, %d primary, %d streaming; problems %v", n, nodes, primaries, streaming, st.Problems)
			}
			checkMembers(t, c, acc, nodes)
			for _, gone := range res.Removed {
				if ct, err := docker.ContainerInspect(context.Background(), c.name+"-"+gone); err == nil {
					t.Errorf("container of removed %s still there (%s)", gone, ct.State.Status)
				}
				if _, err := docker.VolumeInspect(context.Background(), c.topo.VolumeName(gone)); err == nil {
					t.Errorf("volume of removed %s still there", gone)
				}
			}
			t.Logf("scale to %d in %s: added %v, removed %v", n, took.Round(100*time.Millisecond), res.Added, res.Removed)
		}
		mustPgha(t, append([]string{"verify"}, name...)...)
	})
}

// checkMembers asserts that etcd holds a member key for each node and no
// other, and that the primary has a replication slot for each replica and no
// other.
func checkMembers(t *testing.T, c *cluster, acc clients.Access, nodes []string) {
	t.Helper()
	ctx := context.Background()
	keys, err := acc.EtcdKeys(ctx, c.topo.KeyPrefix()+"members/")
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, k := range keys {
		members = append(members, strings.TrimPrefix(k.Name, "members/"))
	}
	slices.Sort(members)
	want := slices.Sorted(slices.Values(nodes))
	if !slices.Equal(members, want) {
		t.Errorf("member keys %v, want %v", members, want)
	}
	// The primary, found among the nodes through their published ports.
	r := mustPgha(t, "psql", "--name", c.name, "--", "-Atc", "SELECT pg_read_file('/etc/hostname') UNION ALL SELECT slot_name FROM pg_replication_slots")
	lines := strings.Fields(r.stdout)
	if len(lines) == 0 {
		t.Fatalf("no answer from the primary: %s", r)
	}
	primary, slots := lines[0], lines[1:]
	slices.Sort(slots)
	var wantSlots []string
	for _, n := range want {
		if n != primary {
			wantSlots = append(wantSlots, n)
		}
	}
	if !slices.Equal(slots, wantSlots) {
		t.Errorf("slots on %s: %v, want %v", primary, slots, wantSlots)
	}
}

// writeGaps are the intervals longer than min between consecutive
// acknowledged writes.
func writeGaps(writes []failover.Write, min time.Duration) []time.Duration {
	var gaps []time.Duration
	var prev time.Time
	for _, w := range writes {
		if w.Outcome != failover.Acked {
			continue
		}
		if !prev.IsZero() && w.Done.Sub(prev) > min {
			gaps = append(gaps, w.Done.Sub(prev).Round(10*time.Millisecond))
		}
		prev = w.Done
	}
	return gaps
}

// readTarGz returns every file of a tar.gz by its path below the top directory.
func readTarGz(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		_, rel, _ := strings.Cut(h.Name, "/")
		files[rel] = string(b)
	}
}
