package e2e

import (
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/topology"
)

// A pgha built the ordinary Go way (go install, cgo at its default, so
// linked against the C library) brings a cluster up with the guard on, on an
// engine chosen through a docker context whose socket is at another path:
// DOCKER_CONTEXT for up, --context for verify and status.
func TestContextsAndGoInstall(t *testing.T) {
	parallel(t)
	tmp := t.TempDir()
	gobin := filepath.Join(tmp, "bin")
	install := exec.Command("go", "install", "../../cmd/pgha")
	// The environment's own CGO_ENABLED: the ordinary way.
	install.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	bin := filepath.Join(gobin, "pgha")
	if out, _ := exec.Command("go", "env", "CGO_ENABLED").Output(); strings.TrimSpace(string(out)) == "1" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		dynamic := false
		for _, p := range f.Progs {
			dynamic = dynamic || p.Type == elf.PT_INTERP
		}
		f.Close()
		if !dynamic {
			t.Fatal("go install with cgo on made a static binary; this test wants the dynamic one")
		}
	}

	// The engine's socket under another path, named by a context in a
	// Docker CLI config of the test's own.
	sock := filepath.Join(tmp, "engine", "docker.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/var/run/docker.sock", sock); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(tmp, "docker-config")
	if err := engine.SaveContext(cfg, "pgha-e2e", "unix://"+sock, "this engine, through a symlink"); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + cfg, "DOCKER_HOST="}
	runCtx := func(extraEnv []string, args ...string) result {
		t.Helper()
		return runBin(t, bin, append(append(withoutEnv(os.Environ(), "DOCKER_HOST", "DOCKER_CONTEXT"), env...), extraEnv...), args...)
	}

	c := newCluster(t, 1, 2).withoutRouter()
	r := runCtx([]string{"DOCKER_CONTEXT=pgha-e2e"}, c.upArgs()...)
	if r.code != 0 {
		t.Fatalf("DOCKER_CONTEXT=pgha-e2e %s %v: %s", bin, c.upArgs(), r)
	}
	if !strings.Contains(r.stderr, "linked against the C library") || !strings.Contains(r.stderr, "watching the engine's events") {
		t.Errorf("the guard from a cgo build:\n%s", r.stderr)
	}
	// The guard's API proxy mounts the engine's socket by its real path, not the link.
	info, err := docker.ContainerInspect(context.Background(), c.name+"-"+topology.GuardProxyNode)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks("/var/run/docker.sock")
	if m := info.HostConfig.Mounts; len(m) != 2 || m[0].Source != real {
		t.Errorf("guard proxy mounts %+v", m)
	}
	if r := runCtx(nil, "--context", "pgha-e2e", "verify", "--name", c.name); r.code != 0 {
		t.Errorf("pgha --context pgha-e2e verify: %s", r)
	}
	if r := runCtx(nil, "--context", "pgha-e2e", "status", "--name", c.name); r.code != 0 || !strings.Contains(r.stdout, "watching") {
		t.Errorf("status through the context: %s", r)
	}
	// An unknown context is a clear error that changes nothing.
	if r := runCtx(nil, "--context", "nonesuch", "status", "--name", c.name); r.code != 1 || !strings.Contains(r.stderr, `docker context "nonesuch"`) {
		t.Errorf("an unknown context: %s", r)
	}
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
next:
	for _, e := range env {
		for _, n := range names {
			if strings.HasPrefix(e, n+"=") {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

var errFalse = errors.New("not yet")

// A failover test interrupted with Ctrl-C heals its fault before it exits;
// one killed outright leaves the fault, and `pgha up` brings the member
// back (unpaused, on the network again) and reports the cluster healthy.
func TestInterruptedFaultsHeal(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 3).withoutRouter()
	c.up(t)
	primaryContainer := func(t *testing.T) string {
		p, _ := c.access(t).Primary(context.Background())
		if p == "" {
			t.Fatal("no primary")
		}
		return c.name + "-" + p
	}
	paused := func(name string) bool {
		info, err := docker.ContainerInspect(context.Background(), name)
		return err == nil && info.State.Paused
	}
	cutOff := func(name string) bool {
		info, err := docker.ContainerInspect(context.Background(), name)
		return err == nil && info.NetworkSettings.Networks[c.topo.NetworkName()] == nil
	}
	pins := func(name string) string {
		out, _ := eng.Output(context.Background(), name, engine.ExecOptions{}, "grep", "-c", "pgha-partition", "/etc/hosts")
		return strings.TrimSpace(out)
	}
	// interrupt starts a failover test, waits until its fault is in place
	// and sends sig; it returns the exit code. A failover test that ends
	// before its fault is in place fails t with its output.
	interrupt := func(t *testing.T, fault string, inPlace func(string) bool, sig syscall.Signal) (string, int) {
		t.Helper()
		target := primaryContainer(t)
		cmd := exec.Command(pghaBin, "failover-test", "--name", c.name, "--fault", fault, "--pause-for", "60s")
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var err error
		eventually(t, 90*time.Second, fault+" in place on "+target, func() error {
			select {
			case err = <-exited:
				t.Fatalf("failover-test ended before its %s was in place: %v\n%s", fault, err, out.String())
			default:
			}
			if !inPlace(target) {
				return errFalse
			}
			return nil
		})
		_ = cmd.Process.Signal(sig)
		err = <-exited
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = -1
			}
		}
		t.Logf("%s interrupted with %v: exit %d\n%s", fault, sig, code, out.String())
		return target, code
	}
	healthy := func(t *testing.T, when string) {
		t.Helper()
		for _, n := range c.topo.Patroni {
			name := c.name + "-" + n.Name
			if paused(name) || cutOff(name) {
				t.Errorf("%s: %s is paused or cut off", when, name)
			}
			if p := pins(name); p != "0" {
				t.Errorf("%s: %s has %s pinned names in /etc/hosts", when, name, p)
			}
		}
		if rep, r := c.verify(t); !rep.OK {
			t.Errorf("%s: verify: %s\n%s", when, failedRows(rep), r)
		}
	}

	for _, f := range []struct {
		fault   string
		inPlace func(string) bool
	}{{"pause", paused}, {"partition", cutOff}} {
		t.Run("ctrl-c during "+f.fault, func(t *testing.T) {
			target, code := interrupt(t, f.fault, f.inPlace, syscall.SIGINT)
			if code != 130 {
				t.Errorf("exit %d, want 130", code)
			}
			if f.inPlace(target) {
				t.Errorf("%s is still under %s after Ctrl-C", target, f.fault)
			}
			c.up(t) // waits until every replica streams again
			healthy(t, "after Ctrl-C and up")
		})
		t.Run("killed during "+f.fault, func(t *testing.T) {
			target, _ := interrupt(t, f.fault, f.inPlace, syscall.SIGKILL)
			if !f.inPlace(target) {
				t.Fatalf("%s healed itself although pgha was killed", target)
			}
			r := c.up(t)
			if !strings.Contains(r.stdout, target) {
				t.Errorf("up's summary: %s", r)
			}
			healthy(t, "after up")
		})
	}
	// Nothing of the cluster is paused or cut off at the end, per the engine.
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{Filters: clusterFilter(c.name)})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cs {
		if ct.State != container.StateRunning || ct.Labels[topology.LabelRole] == "" {
			t.Errorf("%v is %s", ct.Names, ct.State)
		}
	}
}
