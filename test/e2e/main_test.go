// Package e2e runs pgha against the real Docker engine: real etcd, Patroni,
// PostgreSQL and object store. Every test makes its own uniquely named cluster
// on its own free ports and removes it, even when it fails.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/clients"
	pghacluster "github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

var (
	pghaBin  string           // the pgha binary under test
	eng      *engine.Engine   // for assertions and cleanup
	docker   client.APIClient // eng's API
	stateDir string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	ep, err := engine.Locate("")
	if err == nil {
		eng, err = engine.Connect(ctx, ep)
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "e2e: the Docker engine is required in CI: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: skipping, no Docker engine: %v\n", err)
		return 0
	}
	docker = eng.API
	tmp, err := os.MkdirTemp("", "pgha-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	stateDir = filepath.Join(tmp, "state")
	os.Setenv("PGHA_STATE_DIR", stateDir)
	os.Setenv("NO_COLOR", "1")

	pghaBin = filepath.Join(tmp, "pgha")
	build := exec.Command("go", "build", "-o", pghaBin, "../../cmd/pgha")
	// Static, as `make build` makes it: the guard image runs this binary alone.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building pgha: %v\n", err)
		return 1
	}
	// Build the images once for the whole run; content-hashed tags make a
	// second run reuse them.
	start := time.Now()
	cmd := exec.Command(pghaBin, "images", "build")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: pgha images build failed: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: images ready in %s\n", time.Since(start).Round(time.Second))
	return m.Run()
}

// result is one pgha run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// pgha runs the binary with a deadline and returns its output and exit code.
func pgha(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runBin(t, pghaBin, append(os.Environ(), env...), args...)
}

// runBin runs a pgha binary with exactly the environment env.
func runBin(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
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

// mustPgha runs pgha and fails the test unless it exits 0.
func mustPgha(t *testing.T, args ...string) result {
	t.Helper()
	r := pgha(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("pgha %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// cluster is a test's own cluster.
type cluster struct {
	name   string
	offset int
	topo   topology.Cluster
	// noRouter: up omits the router (see withoutRouter).
	noRouter bool
	// failures are the reasons a pgha command failed, repeated at cleanup
	// after the logs: CI shows only the end of a failed run's output.
	failures []string
}

// newCluster picks a unique name and a port offset whose ports are all free,
// and registers a cleanup that removes everything labelled with the name.
// It does not bring the cluster up.
func newCluster(t *testing.T, etcd, patroni int) *cluster {
	t.Helper()
	return newGrowingCluster(t, etcd, patroni, patroni)
}

// newGrowingCluster is newCluster for a cluster that `pgha scale` grows to
// upTo Patroni nodes: the added nodes' ports are claimed (and found free)
// with the others, not left to chance in the ephemeral port range.
func newGrowingCluster(t *testing.T, etcd, patroni, upTo int) *cluster {
	t.Helper()
	name := fmt.Sprintf("e2e-%s-%04x", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:min(12, len(t.Name()))], rand.IntN(0x10000))
	name = strings.Trim(strings.ReplaceAll(name, "_", "-"), "-")
	for try := 0; try < 50; try++ {
		// Offsets 120-380, apart by 20: every port of a cluster (up to
		// etcd3's 32379+offset) stays below Linux's ephemeral range
		// (32768-60999), where an outgoing connection of this machine can
		// take a port between the claim and the start of the container
		// that publishes it (seen twice, minutes into a run). Clusters 20
		// apart share no port: the widest run of one cluster's ports (the
		// REST ports of five nodes) spans 8.
		offset := 120 + rand.IntN(14)*20
		grown, err := topology.Generate(name, etcd, max(patroni, upTo))
		if err != nil {
			t.Fatal(err)
		}
		grown.ShiftPorts(offset)
		var ports []int
		for _, hp := range grown.HostPorts(topology.StoreMinIO) {
			ports = append(ports, hp.Port)
		}
		if claimPorts(t, ports...) {
			topo, err := topology.Generate(name, etcd, patroni)
			if err != nil {
				t.Fatal(err)
			}
			topo.ShiftPorts(offset)
			c := &cluster{name: name, offset: offset, topo: topo}
			t.Cleanup(func() { c.destroy(t) })
			return c
		}
	}
	t.Fatal("no free port offset found")
	return nil
}

// claimed holds the loopback ports that running tests have picked: tests run
// in parallel, and a port found free is not bound until that test's up.
var claimed = struct {
	sync.Mutex
	by map[int]string
}{by: map[int]string{}}

// claimPorts claims the ports for t until it ends, if each one is free on
// 127.0.0.1 and not claimed by another test; otherwise it claims none.
func claimPorts(t *testing.T, ports ...int) bool {
	claimed.Lock()
	defer claimed.Unlock()
	for i, p := range ports {
		if _, taken := claimed.by[p]; taken || slices.Contains(ports[:i], p) {
			return false
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
	}
	for _, p := range ports {
		claimed.by[p] = t.Name()
	}
	t.Cleanup(func() {
		claimed.Lock()
		defer claimed.Unlock()
		for _, p := range ports {
			delete(claimed.by, p)
		}
	})
	return true
}

// withoutRouter makes up omit the router, for tests it has no part in: its
// health checks cost each cluster about a fifth of a core here, a lot on a
// two-core machine that runs several tests at once.
func (c *cluster) withoutRouter() *cluster {
	c.noRouter = true
	return c
}

// upArgs are the arguments that make `pgha up` build this cluster.
func (c *cluster) upArgs() []string {
	args := []string{"up", "--name", c.name, "--etcd", fmt.Sprint(len(c.topo.Etcd)), "--patroni", fmt.Sprint(len(c.topo.Patroni)),
		"--port-offset", fmt.Sprint(c.offset), "--timeout", "3m"}
	if c.noRouter {
		args = append(args, "--router=false")
	}
	return args
}

func (c *cluster) up(t *testing.T) result {
	t.Helper()
	return mustPgha(t, c.upArgs()...)
}

// destroy removes the cluster with pgha, then removes by label anything pgha
// left, so that a failed test leaves nothing behind.
func (c *cluster) destroy(t *testing.T) {
	if t.Failed() {
		c.dumpLogs(t)
		for _, f := range c.failures {
			t.Logf("failed: %s", f)
		}
	}
	if r := pgha(t, nil, "down", "-v", "--name", c.name); r.code != 0 {
		t.Errorf("cleanup: pgha down -v: %s", r)
	}
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", topology.LabelCluster+"="+c.name))
	cs, _ := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	for _, ct := range cs {
		_ = docker.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true})
	}
	ns, _ := docker.NetworkList(ctx, network.ListOptions{Filters: f})
	for _, n := range ns {
		_ = docker.NetworkRemove(ctx, n.ID)
	}
	vs, _ := docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	for _, v := range vs.Volumes {
		_ = docker.VolumeRemove(ctx, v.Name, true)
	}
}

// dumpLogs prints the last lines of every Patroni container's log, so that a
// failure in CI can be diagnosed from its output.
func (c *cluster) dumpLogs(t *testing.T) {
	t.Helper()
	for _, n := range c.topo.Patroni {
		// Patroni's once-a-loop "no action" lines say nothing: keep the rest.
		var kept []string
		for _, l := range strings.Split(containerLogs(t, c.name+"-"+n.Name, "400"), "\n") {
			if !strings.Contains(l, "INFO: no action.") {
				kept = append(kept, l)
			}
		}
		t.Logf("last log lines of %s:\n%s", n.Name, strings.Join(kept[max(0, len(kept)-40):], "\n"))
	}
}

// containerLogs returns the last lines of a container's log ("all" for all).
func containerLogs(t *testing.T, name, tail string) string {
	t.Helper()
	out, err := eng.LogTail(context.Background(), name, tail)
	if err != nil {
		return fmt.Sprintf("(no logs of %s: %v)", name, err)
	}
	return out
}

// resources counts what carries the cluster's label on the engine.
func (c *cluster) resources(t *testing.T) (containers, networks, volumes int) {
	t.Helper()
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", topology.LabelCluster+"="+c.name))
	cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := docker.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs), len(ns), len(vs.Volumes)
}

// secrets reads the cluster's credentials from the state directory.
func (c *cluster) secrets(t *testing.T) (secrets.Secrets, secrets.Store) {
	t.Helper()
	store, err := secrets.For(c.name)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	return sec, store
}

// access is how the test reaches the cluster's services, with its credentials.
func (c *cluster) access(t *testing.T) clients.Access {
	t.Helper()
	_, store := c.secrets(t)
	creds, err := clients.CredentialsFrom(store)
	if err != nil {
		t.Fatal(err)
	}
	return clients.Access{Topo: c.topo, Host: "127.0.0.1", Creds: creds}
}

// status runs `pgha status -o json`.
func (c *cluster) status(t *testing.T) pghacluster.ClusterStatus {
	t.Helper()
	r := mustPgha(t, "status", "--name", c.name, "-o", "json")
	var st pghacluster.ClusterStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, r.stdout)
	}
	return st
}

// eventually polls cond every 200 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s: %v", what, timeout, err)
}

func clusterFilter(name string) filters.Args {
	return filters.NewArgs(filters.Arg("label", topology.LabelCluster+"="+name))
}
