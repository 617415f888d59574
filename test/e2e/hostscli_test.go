package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/hosts"
)

// hostsView is what `pgha hosts create -o json` prints, and each element of
// `pgha hosts list -o json`.
type hostsView struct {
	Prefix string `json:"prefix"`
	Hosts  []struct {
		Name      string `json:"name"`
		Container string `json:"container"`
		Socket    string `json:"socket"`
		Address   string `json:"address"`
		SwarmRole string `json:"swarmRole"`
		Ready     bool   `json:"ready"`
		Leader    bool   `json:"leader"`
		Detail    string `json:"detail"`
		Ports     []int  `json:"ports"`
	} `json:"hosts"`
}

// testHostsCLI drives the one-machine swarm harness through the pgha binary:
// create 3 hosts, check through each inner engine's socket (not through
// pgha's report) that it answers, list them,
// create again (nothing to do), and delete: nothing labelled is left.
func testHostsCLI(t *testing.T) {
	ctx := context.Background()
	prefix := newTestHosts(t, "hcli-e2e")

	// Bad input is a usage error before anything is made.
	for _, args := range [][]string{{"hosts", "create", "--prefix", "Bad_Prefix"}, {"hosts", "create", "0"},
		{"hosts", "create", "3", "--ports", "h4=15000"}, {"hosts", "delete", "--prefix", "../x"}} {
		if r := pgha(t, nil, args...); r.code != 2 || !strings.Contains(r.stderr, "error:") {
			t.Errorf("pgha %s: want a usage error (exit 2): %s", strings.Join(args, " "), r)
		}
	}

	// The hosts publish the ports of a topology, each on the host that
	// runs its member: ports here from 41000-41999.
	var base int
	for try := 0; ; try++ {
		base = 41000 + 20*rand.IntN(49)
		if claimPorts(t, base, base+1, base+2, base+3, base+4, base+5, base+6, base+7, base+8, base+9, base+10, base+11, base+12) {
			break
		}
		if try == 50 {
			t.Fatal("no 13 free ports in 41000-41999")
		}
	}
	file := filepath.Join(t.TempDir(), "topology.yaml")
	topo := fmt.Sprintf(`name: hcli
etcd:
  - {name: etcd1, clientPort: %d}
  - {name: etcd2, clientPort: %d}
  - {name: etcd3, clientPort: %d}
patroni:
  - {name: patroni1, pgPort: %d, restPort: %d}
  - {name: patroni2, pgPort: %d, restPort: %d}
  - {name: patroni3, pgPort: %d, restPort: %d}
objectStore: {apiPort: %d}
routerPorts: {primary: %d, replicas: %d, stats: %d}
`, base, base+1, base+2, base+3, base+4, base+5, base+6, base+7, base+8, base+9, base+10, base+11, base+12)
	if err := os.WriteFile(file, []byte(topo), 0o600); err != nil {
		t.Fatal(err)
	}
	wantPorts := [][]int{{base, base + 3, base + 4, base + 9, base + 10, base + 11, base + 12}, {base + 1, base + 5, base + 6}, {base + 2, base + 7, base + 8}}

	start := time.Now()
	// Bare engines: loading images into the hosts is testSwarm's (it needs them).
	r := mustPgha(t, "hosts", "create", "3", "--prefix", prefix, "-f", file, "--image-load=false", "-o", "json")
	t.Logf("pgha hosts create 3: %s\n%s", time.Since(start).Round(100*time.Millisecond), r.stderr)
	var created hostsView
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || len(created.Hosts) != 3 {
		t.Fatalf("create -o json: %v\n%s", err, r.stdout)
	}
	if !strings.Contains(r.stderr, "DOCKER_HOST=unix://") {
		t.Errorf("create does not say how to reach a host's engine:\n%s", r.stderr)
	}

	for i, h := range created.Hosts {
		if !slices.Equal(h.Ports, wantPorts[i]) {
			t.Errorf("host %s publishes %v, want %v", h.Name, h.Ports, wantPorts[i])
		}
	}

	// Each inner engine answers on its socket.
	for _, h := range created.Hosts {
		if !strings.HasPrefix(h.Socket, "unix://"+stateDir) {
			t.Errorf("host %s: socket %s outside the state directory %s", h.Name, h.Socket, stateDir)
		}
		c, err := client.NewClientWithOpts(client.WithHost(h.Socket), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Ping(ctx); err != nil {
			t.Errorf("host %s: its engine does not answer on %s: %v", h.Name, h.Socket, err)
			continue
		}
	}

	// The listing shows the three, all managers, all ready, one leader.
	r = mustPgha(t, "hosts", "list", "-o", "json")
	var views []hostsView
	if err := json.Unmarshal([]byte(r.stdout), &views); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, r.stdout)
	}
	var mine *hostsView
	for i := range views {
		if views[i].Prefix == prefix {
			mine = &views[i]
		}
	}
	if mine == nil {
		t.Fatalf("list does not show %s:\n%s", prefix, r.stdout)
	}
	managers, leaders := 0, 0
	for _, h := range mine.Hosts {
		if h.SwarmRole == "manager" {
			managers++
		}
		if h.Leader {
			leaders++
		}
		if !h.Ready {
			t.Errorf("host %s not ready: %s", h.Name, h.Detail)
		}
	}
	if len(mine.Hosts) != 3 || managers != 3 || leaders != 1 {
		t.Errorf("list: %d hosts, %d managers, %d leaders:\n%s", len(mine.Hosts), managers, leaders, r.stdout)
	}

	// Creating again changes nothing.
	start = time.Now()
	r = mustPgha(t, "hosts", "create", "3", "--prefix", prefix, "-f", file, "--image-load=false", "-o", "json")
	var again hostsView
	if err := json.Unmarshal([]byte(r.stdout), &again); err != nil || len(again.Hosts) != 3 {
		t.Fatalf("create again -o json: %v\n%s", err, r.stdout)
	}
	for i := range again.Hosts {
		if again.Hosts[i].Address != created.Hosts[i].Address || again.Hosts[i].Container != created.Hosts[i].Container {
			t.Errorf("create again changed host %d: %+v, was %+v", i+1, again.Hosts[i], created.Hosts[i])
		}
	}
	t.Logf("pgha hosts create again: %s", time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	r = mustPgha(t, "hosts", "delete", "--prefix", prefix)
	t.Logf("pgha hosts delete: %s\n%s", time.Since(start).Round(100*time.Millisecond), r.stderr)
	f := filters.NewArgs(filters.Arg("label", hosts.LabelHosts+"="+prefix))
	cs, err1 := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	ns, err2 := docker.NetworkList(ctx, network.ListOptions{Filters: f})
	vs, err3 := docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	if len(cs)+len(ns)+len(vs.Volumes) != 0 {
		t.Errorf("left after delete: %d containers, %d networks, %d volumes", len(cs), len(ns), len(vs.Volumes))
	}
	if _, err := os.Stat(filepath.Join(stateDir, "hosts", prefix)); !os.IsNotExist(err) {
		t.Errorf("socket directories left: %v", err)
	}
	// Nothing to delete is not an error.
	r = mustPgha(t, "hosts", "delete", "--prefix", prefix)
	if !strings.Contains(r.stderr, "Nothing to delete") {
		t.Errorf("a second delete says:\n%s", r.stderr)
	}
}

// newTestHosts skips a test when this machine's engine is not reached over a
// unix socket, picks a unique prefix for its test hosts and deletes them when
// the test ends (through the package, so that a broken CLI cannot leave them
// behind), their last log lines first if it failed.
func newTestHosts(t *testing.T, stem string) string {
	t.Helper()
	if h := docker.DaemonHost(); !strings.HasPrefix(h, "unix://") {
		t.Skipf("test hosts need this machine's engine over a unix socket, not %s", h)
	}
	ctx := context.Background()
	prefix := fmt.Sprintf("%s-%04x", stem, rand.IntN(0x10000))
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= 3; i++ {
				name := hosts.ContainerName(prefix, i)
				t.Logf("last log lines of %s:\n%s", name, hosts.LogTail(ctx, docker, name, 20))
			}
		}
		if err := hosts.Delete(ctx, docker, prefix); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return prefix
}
