package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/failover"
	"github.com/pgha/pgha/pkg/topology"
)

// The new faults, once each, on one cluster in strict synchronous mode: 0
// acknowledged writes lost, no split brain, every run healed. A kill and a
// dcs-partition write an HTML report, rendered to PNG by headless chromium.
// Then a Ctrl-C in the middle of each new fault leaves a cluster that heals
// and that `pgha up` finds complete.
func TestMatrix(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 3)
	upStrict := append(c.upArgs(), "--sync", "strict")
	mustPgha(t, upStrict...)
	dir := t.TempDir()

	t.Run("kill with a report", func(t *testing.T) {
		page := filepath.Join(dir, "failover-kill.html")
		rep := c.failover(t, "failover-test", "--fault", "kill", "--report", page)
		if rep.LostAcked != 0 || len(rep.SplitBrains) != 0 || rep.Probes < 50 || rep.NewPrimary == rep.OldPrimary {
			t.Errorf("kill: %+v", rep)
		}
		renderReport(t, page, "kill")
	})

	t.Run("dcs-partition with a report", func(t *testing.T) {
		page := filepath.Join(dir, "failover-dcs-partition.html")
		rep := c.failover(t, "failover-test", "--fault", "dcs-partition", "--pause-for", "25s", "--report", page)
		if rep.LostAcked != 0 || len(rep.SplitBrains) != 0 || rep.NewPrimary == rep.OldPrimary || !rep.TargetWasLeader {
			t.Errorf("dcs-partition: %+v", rep)
		}
		// The cut-off primary stayed reachable from the host: the probes
		// reached it through its published port while it was cut off.
		if rep.NewLeaderSec < 15 {
			t.Errorf("a new leader after %.2f s: the lease (20 s) cannot have expired", rep.NewLeaderSec)
		}
		c.noHelpers(t)
		renderReport(t, page, "dcs-partition")
	})

	t.Run("matrix of the other new faults", func(t *testing.T) {
		page := filepath.Join(dir, "matrix.html")
		fs := "etcd-quorum,etcd-leader,replica-kill,power-loss,lossy-network,store-down"
		r := pghaFor(t, 15*time.Minute, "failover-test", "--name", c.name, "--matrix", "--faults", fs, "--rounds", "1", "--sync", "strict",
			"--report", page, "-o", "json", "--timeout", "90s")
		var m failover.MatrixReport
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("--matrix -o json: %v\n%s", err, r)
		}
		for _, s := range m.Summary {
			t.Logf("%-14s on %-13s passed %d/%d healed %d gap %.2fs leader %.2fs whole %.2fs acked %d lost %d split %d",
				s.Fault, s.On, s.Passed, s.Rounds, s.Healed, s.GapMedian, s.NewLeaderMedian, s.RejoinMedian, s.Acked, s.Lost, s.SplitBrains)
		}
		if r.code != 0 || !m.OK || m.Lost != 0 || m.SplitBrains != 0 || m.Unhealed != 0 || len(m.Runs) != 6 {
			c.dumpLogs(t)
			t.Fatalf("matrix: ok=%v lost %d split %d unhealed %d failures %v\n%s", m.OK, m.Lost, m.SplitBrains, m.Unhealed, m.Failures, r.stderr)
		}
		for _, run := range m.Runs {
			if run.Fault == "store-down" && (run.Archive == nil || len(run.Archive.Missing) != 0 || run.Archive.Segments < 3) {
				t.Errorf("store-down: the archive after the heal: %+v", run.Archive)
			}
			if run.Fault == "etcd-leader" && !strings.HasPrefix(run.Target, "etcd") {
				t.Errorf("etcd-leader hit %q", run.Target)
			}
		}
		c.noHelpers(t)
		renderReport(t, page, "matrix")
	})

	// Ctrl-C while each fault holds: pgha heals before it exits (130), and
	// `pgha up` then finds the cluster complete and healthy.
	inPlace := map[string]func() bool{
		"dcs-partition": func() bool { return c.helperInPlace(t) },
		"lossy-network": func() bool { return c.helperInPlace(t) },
		"etcd-quorum":   func() bool { return c.stopped(t, topology.RoleEtcd) >= 2 },
		"etcd-leader":   func() bool { return c.stopped(t, topology.RoleEtcd) == 1 },
		"replica-kill":  func() bool { return c.stopped(t, topology.RolePatroni) == 1 },
		"power-loss":    func() bool { return c.stopped(t, topology.RolePatroni) == 3 && c.stopped(t, topology.RoleEtcd) == 3 },
		"store-down":    func() bool { return c.stopped(t, topology.RoleObjectStore) == 1 },
	}
	for _, fault := range []string{"dcs-partition", "etcd-quorum", "etcd-leader", "replica-kill", "power-loss", "lossy-network", "store-down"} {
		t.Run("ctrl-c during "+fault, func(t *testing.T) {
			cmd := exec.Command(pghaBin, "failover-test", "--name", c.name, "--fault", fault, "--pause-for", "60s")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for !inPlace[fault]() {
				if time.Now().After(deadline) {
					_ = cmd.Process.Signal(syscall.SIGINT)
					_ = cmd.Wait()
					t.Fatalf("%s not in place after 60 s:\n%s", fault, out.String())
				}
				time.Sleep(200 * time.Millisecond)
			}
			_ = cmd.Process.Signal(syscall.SIGINT)
			err := cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			t.Logf("%s interrupted: exit %d\n%s", fault, code, out.String())
			if code != 130 {
				t.Errorf("exit %d, want 130", code)
			}
			if inPlace[fault]() {
				t.Errorf("%s still in place after Ctrl-C", fault)
			}
			c.noHelpers(t)
			for _, role := range []string{topology.RoleEtcd, topology.RolePatroni, topology.RoleObjectStore} {
				if n := c.stopped(t, role); n != 0 {
					t.Errorf("%d %s containers not running after Ctrl-C", n, role)
				}
			}
			mustPgha(t, upStrict...) // waits until every replica streams again
			c.waitVerified(t)
		})
	}
}

// pghaFor runs pgha with a deadline of its own.
func pghaFor(t *testing.T, d time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, pghaBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running pgha %v: %v", args, err)
	}
	return r
}

// stopped counts the cluster's containers of a role that do not run.
func (c *cluster) stopped(t *testing.T, role string) int {
	t.Helper()
	f := clusterFilter(c.name)
	f.Add("label", topology.LabelRole+"="+role)
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ct := range cs {
		if ct.State != container.StateRunning {
			n++
		}
	}
	return n
}

// helpers lists the cluster's network-fault helper containers.
func (c *cluster) helpers(t *testing.T) []container.Summary {
	t.Helper()
	f := clusterFilter(c.name)
	f.Add("label", topology.LabelRole+"=netfault")
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// helperInPlace says whether a network fault is in place: its helper runs
// and said so.
func (c *cluster) helperInPlace(t *testing.T) bool {
	for _, h := range c.helpers(t) {
		if h.State == container.StateRunning && strings.Contains(containerLogs(t, h.ID, "all"), "pgha-netfault: in place") {
			return true
		}
	}
	return false
}

// noHelpers: a healed network fault leaves no helper container behind.
func (c *cluster) noHelpers(t *testing.T) {
	t.Helper()
	if hs := c.helpers(t); len(hs) != 0 {
		t.Errorf("network-fault helpers left behind: %d (%v)", len(hs), hs[0].Names)
	}
}

// chromiumNoise are chromium's complaints about the machine, not the page.
var chromiumNoise = regexp.MustCompile(`dbus|bus\.cc|object_proxy|gpu|viz_main|sandbox|angle|vaapi|ui/gl|zygote|gcm|fontconfig|crashpad|Fontconfig`)

// renderReport renders an HTML report with headless chromium: the page must
// load without errors, hold its marker and its timelines, and make a PNG that
// is not blank. The PNG is kept in $PGHA_E2E_REPORTS when that is set.
func renderReport(t *testing.T, page, name string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is needed to render the report (make deps installs it): %v", err)
		}
		t.Skipf("no chromium to render the report (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	shot := filepath.Join(dir, name+".png")
	run := func(args ...string) (string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		base := []string{"--headless", "--disable-gpu", "--no-sandbox", "--user-data-dir=" + filepath.Join(dir, "profile"),
			"--enable-logging=stderr", "--v=0"}
		cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+page)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Env = append(os.Environ(), "HOME="+dir)
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
		}
		return out.String(), errb.String()
	}
	start := time.Now()
	_, stderr := run("--screenshot="+shot, "--window-size=1400,1300", "--hide-scrollbars")
	dom, stderr2 := run("--dump-dom")
	t.Logf("chromium rendered %s in %s", filepath.Base(page), time.Since(start).Round(100*time.Millisecond))
	for _, line := range strings.Split(stderr+stderr2, "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "net::ERR") || strings.Contains(line, "Uncaught") ||
			(strings.Contains(line, "ERROR") && !chromiumNoise.MatchString(line)) {
			t.Errorf("chromium reports an error on the page: %s", line)
		}
	}
	if !strings.Contains(dom, `id="pgha-report"`) || strings.Count(dom, "<svg") < 2 || !strings.Contains(dom, "fault: ") {
		t.Errorf("the rendered page lacks its marker or timelines:\n%.2000s", dom)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if nonWhite, colours := inked(img); nonWhite < 0.03 || colours < 6 {
		t.Errorf("the screenshot looks blank: %.1f%% of it inked, %d colours", nonWhite*100, colours)
	}
	if keep := os.Getenv("PGHA_E2E_REPORTS"); keep != "" {
		_ = os.MkdirAll(keep, 0o755)
		for src, dst := range map[string]string{shot: name + ".png", page: name + ".html"} {
			if data, err := os.ReadFile(src); err == nil {
				_ = os.WriteFile(filepath.Join(keep, dst), data, 0o644)
			}
		}
	}
}

// inked is the share of pixels that are not white, and how many colours
// there are (on a grid of every 4th pixel).
func inked(img image.Image) (float64, int) {
	b := img.Bounds()
	seen := map[[3]uint32]bool{}
	total, ink := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			total++
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				ink++
			}
			if len(seen) < 1000 {
				seen[[3]uint32{r >> 12, g >> 12, bl >> 12}] = true
			}
		}
	}
	return float64(ink) / float64(max(total, 1)), len(seen)
}
