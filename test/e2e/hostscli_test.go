package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

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

// checkHostsCreated reads `pgha hosts create -o json`: three hosts, each
// publishing the ports in want (any order), each inner engine answering on
// its socket in the state directory (asked directly, not through pgha).
func checkHostsCreated(t *testing.T, r result, want [][]int) hostsView {
	t.Helper()
	var created hostsView
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || len(created.Hosts) != 3 {
		t.Fatalf("create -o json: %v\n%s", err, r.stdout)
	}
	if !strings.Contains(r.stderr, "DOCKER_HOST=unix://") {
		t.Errorf("create does not say how to reach a host's engine:\n%s", r.stderr)
	}
	for i, h := range created.Hosts {
		got, w := slices.Sorted(slices.Values(h.Ports)), slices.Sorted(slices.Values(want[i]))
		if !slices.Equal(got, w) {
			t.Errorf("host %s publishes %v, want %v", h.Name, got, w)
		}
		if !strings.HasPrefix(h.Socket, "unix://"+stateDir) {
			t.Errorf("host %s: socket %s outside the state directory %s", h.Name, h.Socket, stateDir)
		}
		c, err := client.NewClientWithOpts(client.WithHost(h.Socket), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Ping(context.Background()); err != nil {
			t.Errorf("host %s: its engine does not answer on %s: %v", h.Name, h.Socket, err)
		}
		c.Close()
	}
	return created
}

// checkHostsListed: `pgha hosts list` shows the prefix's three hosts, all
// managers, all ready, one leader.
func checkHostsListed(t *testing.T, prefix string) {
	t.Helper()
	r := mustPgha(t, "hosts", "list", "-o", "json")
	var views []hostsView
	if err := json.Unmarshal([]byte(r.stdout), &views); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, r.stdout)
	}
	i := slices.IndexFunc(views, func(v hostsView) bool { return v.Prefix == prefix })
	if i < 0 {
		t.Fatalf("list does not show %s:\n%s", prefix, r.stdout)
	}
	managers, leaders := 0, 0
	for _, h := range views[i].Hosts {
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
	if len(views[i].Hosts) != 3 || managers != 3 || leaders != 1 {
		t.Errorf("list: %d hosts, %d managers, %d leaders:\n%s", len(views[i].Hosts), managers, leaders, r.stdout)
	}
}

// checkHostsSame: a second create kept every host's container and address.
func checkHostsSame(t *testing.T, created hostsView, r result) {
	t.Helper()
	var again hostsView
	if err := json.Unmarshal([]byte(r.stdout), &again); err != nil || len(again.Hosts) != 3 {
		t.Fatalf("create again -o json: %v\n%s", err, r.stdout)
	}
	for i := range again.Hosts {
		if again.Hosts[i].Address != created.Hosts[i].Address || again.Hosts[i].Container != created.Hosts[i].Container {
			t.Errorf("create again changed host %d: %+v, was %+v", i+1, again.Hosts[i], created.Hosts[i])
		}
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
