package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/pgha/pgha/pkg/hosts"
)

// testHosts makes three Docker engines in containers, joins them into a
// swarm of three managers, loads pgha's images into them, runs a service
// pinned to h3 whose host-mode port answers on the machine, checks that an
// overlay network carries traffic between h1 and h2, and deletes it all.
func testHosts(t *testing.T) {
	ctx := context.Background()
	if h := docker.DaemonHost(); !strings.HasPrefix(h, "unix://") {
		t.Skipf("test hosts need this machine's engine over a unix socket, not %s", h)
	}
	patroniRef := imageRef(t, "patroni")
	prefix := fmt.Sprintf("e2e-hosts-%04x", rand.IntN(0x10000))
	stateDir := t.TempDir() // removed after the cleanup below, which runs first
	ports := freePorts(t, 3)
	opts := hosts.Options{
		Prefix:   prefix,
		Count:    3,
		Ports:    map[int][]int{1: {ports[0]}, 2: {ports[1]}, 3: {ports[2]}},
		StateDir: stateDir,
		Images:   []string{patroniRef, hosts.BaseImage},
	}

	var sw hosts.Swarm
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range sw.Hosts {
				t.Logf("last log lines of %s:\n%s", h.Container, hosts.LogTail(ctx, docker, h.Container, 30))
			}
		}
		start := time.Now()
		if err := hosts.Delete(ctx, docker, prefix); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		t.Logf("deleted the hosts in %s", time.Since(start).Round(100*time.Millisecond))
	})

	start := time.Now()
	sw, err := hosts.Create(ctx, docker, opts, func(line string) {
		t.Logf("%6.1fs  %s", time.Since(start).Seconds(), line)
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Logf("created 3 hosts, swarm and images in %s", time.Since(start).Round(100*time.Millisecond))
	if len(sw.Hosts) != 3 {
		t.Fatalf("hosts %+v", sw.Hosts)
	}
	for i, h := range sw.Hosts {
		if h.Name != fmt.Sprintf("h%d", i+1) || h.Address == "" || h.State != "running" || !strings.HasPrefix(h.Socket, "unix://"+stateDir) {
			t.Errorf("host %d: %+v", i+1, h)
		}
	}

	// Creating again completes nothing and changes nothing.
	start = time.Now()
	again, err := hosts.Create(ctx, docker, opts, nil)
	if err != nil {
		t.Fatalf("create again: %v", err)
	}
	t.Logf("create again on a complete swarm: %s", time.Since(start).Round(time.Millisecond))
	for i := range again.Hosts {
		if again.Hosts[i].Address != sw.Hosts[i].Address || again.Hosts[i].Container != sw.Hosts[i].Container {
			t.Errorf("create again changed host %d: %+v, was %+v", i+1, again.Hosts[i], sw.Hosts[i])
		}
	}

	h1 := innerClient(t, sw, "h1")
	h2 := innerClient(t, sw, "h2")

	// Three managers, all ready and reachable, one leader.
	nodes, err := h1.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	nodeID := map[string]string{}
	for _, n := range nodes {
		nodeID[n.Description.Hostname] = n.ID
		if n.Spec.Role != swarm.NodeRoleManager || n.Status.State != swarm.NodeStateReady || n.ManagerStatus == nil || n.ManagerStatus.Reachability != swarm.ReachabilityReachable {
			t.Errorf("node %s: role %s, state %s, manager %+v", n.Description.Hostname, n.Spec.Role, n.Status.State, n.ManagerStatus)
		}
		if n.ManagerStatus != nil && n.ManagerStatus.Leader {
			leaders++
		}
	}
	if len(nodes) != 3 || leaders != 1 || nodeID["h1"] == "" || nodeID["h2"] == "" || nodeID["h3"] == "" {
		t.Fatalf("%d nodes %v, %d leaders", len(nodes), nodeID, leaders)
	}

	// The images are on every host.
	for _, h := range sw.Hosts {
		c := innerClient(t, sw, h.Name)
		for _, ref := range opts.Images {
			if _, err := c.ImageInspect(ctx, ref); err != nil {
				t.Errorf("host %s: %s: %v", h.Name, ref, err)
			}
		}
	}

	t.Run("service pinned to h3 answers on 127.0.0.1", func(t *testing.T) {
		port := ports[2]
		spec := swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: "web"},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{
					Image:   patroniRef,
					Command: []string{"python3", "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", "/etc"},
				},
				Placement: &swarm.Placement{Constraints: []string{"node.hostname==h3"}},
			},
			EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
				Protocol: swarm.PortConfigProtocolTCP, TargetPort: 8080, PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost,
			}}},
		}
		start := time.Now()
		created, err := h1.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/os-release", port)
		eventually(t, 90*time.Second, "GET "+url, func() error {
			resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(body), "trixie") {
				return fmt.Errorf("%s: %.100s", resp.Status, body)
			}
			return nil
		})
		t.Logf("service on h3 answers at %s %s after its creation", url, time.Since(start).Round(100*time.Millisecond))
		tasks, err := h1.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", created.ID), filters.Arg("desired-state", "running"))})
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) != 1 || tasks[0].NodeID != nodeID["h3"] {
			t.Errorf("tasks %+v, want one on h3 (%s)", tasks, nodeID["h3"])
		}
	})

	t.Run("overlay network between h1 and h2", func(t *testing.T) {
		if _, err := h1.NetworkCreate(ctx, "e2e-overlay", network.CreateOptions{Driver: "overlay", Attachable: true}); err != nil {
			t.Fatal(err)
		}
		// A TCP server on h2 (the base image has perl, not nc or ping).
		server := `use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalPort => 7000, Listen => 5, ReuseAddr => 1) or die "listen: $!";
while (my $c = $s->accept) { print $c "hello from " . qx(hostname); close $c }`
		runInner(t, h2, "srv", []string{"perl", "-e", server}, false)
		// The overlay's addresses come from the swarm's pool, the inner
		// bridges' from the engines' pool: apart from the outer engine's.
		srv, err := h2.ContainerInspect(ctx, "srv")
		if err != nil {
			t.Fatal(err)
		}
		addr := srv.NetworkSettings.Networks["e2e-overlay"].IPAddress
		if !inPool(addr, hosts.DefaultSwarmAddressPool) {
			t.Errorf("srv has %q on the overlay, outside %s", addr, hosts.DefaultSwarmAddressPool)
		}
		br, err := h1.NetworkInspect(ctx, "bridge", network.InspectOptions{})
		if err != nil || len(br.IPAM.Config) == 0 || !inPool(br.IPAM.Config[0].Gateway, hosts.DefaultAddressPool) {
			t.Errorf("h1's docker0: %+v %v, want it in %s", br.IPAM.Config, err, hosts.DefaultAddressPool)
		}
		t.Logf("srv on h2: %s on the overlay; h1's docker0: %s", addr, br.IPAM.Config[0].Subnet)
		start := time.Now()
		var out string
		eventually(t, 60*time.Second, "TCP from h1 to srv on h2 over the overlay", func() error {
			out = runInner(t, h1, fmt.Sprintf("cli-%d", time.Now().UnixNano()), []string{"bash", "-c", "exec 3<>/dev/tcp/srv/7000 && cat <&3"}, true)
			if !strings.Contains(out, "hello from") {
				return fmt.Errorf("client said %q", out)
			}
			return nil
		})
		t.Logf("h1 -> h2 over the overlay: %q (%s)", strings.TrimSpace(out), time.Since(start).Round(100*time.Millisecond))
	})

	// A host that was stopped comes back with its address and rejoins:
	// create starts it and waits for the swarm.
	t.Run("a stopped host comes back", func(t *testing.T) {
		timeout := 30
		start := time.Now()
		if err := docker.ContainerStop(ctx, sw.Hosts[1].Container, container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		t.Logf("stopped h2 in %s", time.Since(start).Round(100*time.Millisecond))
		start = time.Now()
		back, err := hosts.Create(ctx, docker, opts, func(line string) { t.Logf("%6.1fs  %s", time.Since(start).Seconds(), line) })
		if err != nil {
			t.Fatalf("create after stopping h2: %v", err)
		}
		if back.Hosts[1].Address != sw.Hosts[1].Address || back.Hosts[1].State != "running" {
			t.Errorf("h2 came back as %+v, was %+v", back.Hosts[1], sw.Hosts[1])
		}
		t.Logf("h2 back in the swarm %s after create", time.Since(start).Round(100*time.Millisecond))
	})

	// Delete leaves nothing labelled on the outer engine, no socket
	// directory, and no cgroup of an inner container.
	inner := innerContainerIDs(t, sw)
	start = time.Now()
	if err := hosts.Delete(ctx, docker, prefix); err != nil {
		t.Fatalf("delete: %v", err)
	}
	t.Logf("deleted in %s", time.Since(start).Round(100*time.Millisecond))
	f := filters.NewArgs(filters.Arg("label", hosts.LabelHosts+"="+prefix))
	cs, _ := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	ns, _ := docker.NetworkList(ctx, network.ListOptions{Filters: f})
	vs, _ := docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	if len(cs)+len(ns)+len(vs.Volumes) != 0 {
		t.Errorf("left after delete: %d containers, %d networks, %d volumes", len(cs), len(ns), len(vs.Volumes))
	}
	if _, err := os.Stat(filepath.Join(stateDir, prefix)); !os.IsNotExist(err) {
		t.Errorf("socket directories left under %s: %v", filepath.Join(stateDir, prefix), err)
	}
	for _, id := range inner {
		if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/docker/" + id); len(dirs) > 0 {
			t.Errorf("cgroups of inner container %.12s left: %v", id, dirs)
		}
	}
	if _, err := hosts.Inspect(ctx, docker, prefix); err == nil {
		t.Error("inspect finds the deleted hosts")
	}
	if err := hosts.Delete(ctx, docker, prefix); err != nil {
		t.Errorf("a second delete: %v", err)
	}
}

func inPool(addr, pool string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && netip.MustParsePrefix(pool).Contains(a)
}

// imageRef asks pgha which image a role runs.
func imageRef(t *testing.T, role string) string {
	t.Helper()
	r := mustPgha(t, "images", "list", "-o", "json")
	var set map[string]struct {
		Ref string `json:"ref"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &set); err != nil || set[role].Ref == "" {
		t.Fatalf("pgha images list -o json: %v\n%s", err, r.stdout)
	}
	return set[role].Ref
}

// freePorts finds n free ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for len(ports) < n {
		if p := 20000 + rand.IntN(20000); !slices.Contains(ports, p) && claimPorts(t, p) {
			ports = append(ports, p)
		}
	}
	return ports
}

func innerClient(t *testing.T, sw hosts.Swarm, name string) *client.Client {
	t.Helper()
	h, ok := sw.Host(name)
	if !ok {
		t.Fatalf("no host %s", name)
	}
	c, err := h.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runInner runs the base image on an inner engine, on the overlay. With wait
// it waits for the command to end, returns its output and removes it.
func runInner(t *testing.T, c *client.Client, name string, cmd []string, wait bool) string {
	t.Helper()
	ctx := context.Background()
	_, err := c.ContainerCreate(ctx, &container.Config{Image: hosts.BaseImage, Cmd: cmd, Hostname: name},
		&container.HostConfig{}, &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"e2e-overlay": {}}}, nil, name)
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	if err := c.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	if !wait {
		return ""
	}
	defer c.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	okc, errc := c.ContainerWait(wctx, name, container.WaitConditionNotRunning)
	select {
	case <-okc:
	case err := <-errc:
		return fmt.Sprintf("(wait: %v)", err)
	}
	rc, err := c.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Sprintf("(logs: %v)", err)
	}
	defer rc.Close()
	var out strings.Builder
	_, _ = stdcopy.StdCopy(&out, &out, rc)
	return out.String()
}

// innerContainerIDs lists every container of every inner engine.
func innerContainerIDs(t *testing.T, sw hosts.Swarm) []string {
	t.Helper()
	var ids []string
	for _, h := range sw.Hosts {
		cs, err := innerClient(t, sw, h.Name).ContainerList(context.Background(), container.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
	}
	return ids
}
