package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/faults"
	"github.com/pgha/pgha/pkg/hosts"
	"github.com/pgha/pgha/pkg/topology"
)

// hostFaultsPorts is the range of ports testHostFaults publishes in: below
// Linux's ephemeral ports (32768-60999), which any outgoing connection may
// take in the half minute between the claim and the bind (seen once at 41318).
const hostFaultsPortLo, hostFaultsPortHi = 21000, 21999

// testHostFaults kills and starts a whole test host, and cuts a host off the
// others while the machine still reaches its published port, through pgha's
// own faults (host-down, host-partition) on services named as a cluster's
// members.
func testHostFaults(t *testing.T) {
	ctx := context.Background()
	if h := docker.DaemonHost(); !strings.HasPrefix(h, "unix://") {
		t.Skipf("test hosts need this machine's engine over a unix socket, not %s", h)
	}
	prefix := fmt.Sprintf("e2e-hf-%04x", rand.IntN(0x10000))
	stateDir := t.TempDir()
	port := freePortIn(t, hostFaultsPortLo, hostFaultsPortHi)
	opts := hosts.Options{
		Prefix:   prefix,
		Count:    3,
		Ports:    map[int][]int{3: {port}},
		StateDir: stateDir,
		Images:   []string{hosts.BaseImage},
	}
	ctl := &hosts.Controller{Outer: docker, Prefix: prefix, Deadline: 5 * time.Minute}
	start := time.Now()
	if err := ctl.EnsureHelper(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("network-fault helper image %s (%s)", ctl.HelperImage, time.Since(start).Round(100*time.Millisecond))

	var sw hosts.Swarm
	var inner []string // the inner engines' containers when the hosts go
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range sw.Hosts {
				t.Logf("last log lines of %s:\n%s", h.Container, hosts.LogTail(ctx, docker, h.Container, 20))
			}
		}
		start := time.Now()
		if err := hosts.Delete(ctx, docker, prefix); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		t.Logf("deleted the hosts in %s", time.Since(start).Round(100*time.Millisecond))
		// Delete leaves nothing labelled on the outer engine, no socket
		// directory, and no cgroup of a container that ran inside a host.
		checkHostsGone(t, prefix, filepath.Join(stateDir, prefix), inner)
	})
	start = time.Now()
	sw, err := hosts.Create(ctx, docker, opts, nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Logf("3 hosts, swarm and the base image in %s; h3 publishes %d", time.Since(start).Round(100*time.Millisecond), port)

	topo, err := topology.Generate(prefix, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	ft := faults.Target{Topo: topo, Hosts: ctl.Faults()}
	h1 := innerClient(t, sw, "h1")
	h3 := innerClient(t, sw, "h3")

	// Services named as the cluster's members: patroni2 on h2, patroni3 on
	// h3 publishing port (a TCP server in perl: the base image has no nc).
	server := `use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die "listen: $!";
while (my $c = $s->accept) { print $c "hello from " . qx(hostname); close $c }`
	for _, m := range []struct {
		node, host string
		port       int
	}{{"patroni2", "h2", 0}, {"patroni3", "h3", port}} {
		spec := swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: topo.ContainerName(m.node)},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: hosts.BaseImage, Command: []string{"perl", "-e", server}},
				Placement:     &swarm.Placement{Constraints: []string{"node.hostname==" + m.host}},
			},
			EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
		}
		if m.port != 0 {
			spec.EndpointSpec.Ports = []swarm.PortConfig{{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 8080, PublishedPort: uint32(m.port), PublishMode: swarm.PortConfigPublishModeHost}}
		}
		if _, err := h1.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	start = time.Now()
	eventually(t, 90*time.Second, "patroni3 on h3 answering at "+addr, func() error { return hello(addr) })
	t.Logf("patroni3 on h3 answers at %s (%s)", addr, time.Since(start).Round(100*time.Millisecond))
	for node, want := range map[string]string{"patroni2": "h2", "patroni3": "h3"} {
		var got string
		eventually(t, 60*time.Second, node+"'s host", func() error {
			got, err = ft.Hosts.HostOf(ctx, topo, node)
			return err
		})
		if got != want {
			t.Errorf("%s runs on %s, want %s", node, got, want)
		}
	}
	if _, err := ctl.HostOf(ctx, nil, topo.ContainerName("patroni1")); err == nil || !strings.Contains(err.Error(), "run no service "+topo.ContainerName("patroni1")) {
		t.Errorf("host of a service that does not exist: %v", err)
	}

	t.Run("host-down", func(t *testing.T) {
		start := time.Now()
		in, err := faults.Inject(ctx, faults.HostDown{}, ft, "patroni2")
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		killed := time.Since(start)
		eventually(t, 60*time.Second, "h1 seeing h2 down", func() error { return nodeState(ctx, h1, "h2", swarm.NodeStateDown) })
		down := time.Since(start)
		if ct, err := docker.ContainerInspect(ctx, sw.Hosts[1].Container); err != nil || ct.State.Running {
			t.Errorf("h2's container after host-down: %v running=%v", err, ct.State != nil && ct.State.Running)
		}
		if err := hello(addr); err != nil {
			t.Errorf("h3's service with h2 down: %v", err)
		}
		start = time.Now()
		if err := in.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		healed := time.Since(start)
		if err := nodeState(ctx, h1, "h2", swarm.NodeStateReady); err != nil {
			t.Errorf("after the heal: %v", err)
		}
		t.Logf("host-down: h2 killed in %s; h1 saw it down %s after the kill; heal (start, engine up, swarm ready) %s",
			killed.Round(10*time.Millisecond), down.Round(100*time.Millisecond), healed.Round(100*time.Millisecond))
	})

	t.Run("host-partition", func(t *testing.T) {
		if _, err := h1.NetworkCreate(ctx, "e2e-overlay", network.CreateOptions{Driver: "overlay", Attachable: true}); err != nil {
			t.Fatal(err)
		}
		runInner(t, h3, "srv", []string{"perl", "-e", strings.Replace(server, "8080", "7000", 1)}, false)
		srv, err := h3.ContainerInspect(ctx, "srv")
		if err != nil {
			t.Fatal(err)
		}
		// By address: the swarm's DNS forgets a host it lost, and the cut
		// is to be seen on the overlay itself.
		ip := srv.NetworkSettings.Networks["e2e-overlay"].IPAddress
		// The overlay's addresses come from the swarm's pool, the inner
		// bridges' from the engines' pool: apart from the outer engine's.
		if !inPool(ip, hosts.DefaultSwarmAddressPool) {
			t.Errorf("srv has %q on the overlay, outside %s", ip, hosts.DefaultSwarmAddressPool)
		}
		if br, err := h1.NetworkInspect(ctx, "bridge", network.InspectOptions{}); err != nil || len(br.IPAM.Config) == 0 || !inPool(br.IPAM.Config[0].Gateway, hosts.DefaultAddressPool) {
			t.Errorf("h1's docker0: %+v %v, want it in %s", br.IPAM.Config, err, hosts.DefaultAddressPool)
		}
		// One client on h1, attached once: attaching a container to the
		// overlay asks the managers, which may be busy with h3.
		runInner(t, h1, "cli", []string{"sleep", "infinity"}, false)
		cli := engine.New(h1)
		probe := func() error {
			pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			out, err := cli.Output(pctx, "cli", engine.ExecOptions{}, "timeout", "4", "bash", "-c", "exec 3<>/dev/tcp/"+ip+"/7000 && cat <&3")
			if err != nil || !strings.Contains(out, "hello from") {
				return fmt.Errorf("h1 -> srv (%s) on h3: %q (%v)", ip, strings.TrimSpace(out), err)
			}
			return nil
		}
		start := time.Now()
		eventually(t, 60*time.Second, "h1 reaching srv on h3 over the overlay", probe)
		t.Logf("h1 -> h3 over the overlay answers (%s)", time.Since(start).Round(100*time.Millisecond))

		start = time.Now()
		in, err := faults.Inject(ctx, faults.HostPartition{}, ft, "patroni3")
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close() // healed on every exit path
		cut := time.Since(start)
		if err := probe(); err == nil {
			t.Error("h1 still reaches srv on h3 with h3 cut off")
		} else {
			t.Logf("cut: %v", err)
		}
		// Within a few tries: one answer may be slow on a loaded machine.
		eventually(t, 20*time.Second, "h3's published port answering with h3 cut off", func() error { return hello(addr) })
		// The managers in the majority see h3 go down; h3's engine still answers.
		eventually(t, 60*time.Second, "h1 seeing h3 down", func() error { return nodeState(ctx, h1, "h3", swarm.NodeStateDown) })
		seenDown := time.Since(start)
		if _, err := h3.Ping(ctx); err != nil {
			t.Errorf("h3's engine with h3 cut off: %v", err)
		}

		start = time.Now()
		if err := in.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		joined := time.Since(start)
		// Each figure when first seen, within one wait.
		var reach, ready time.Duration
		// The overlay came back 9.5-45.5 s after the join in runs here
		// (the swarm's gossip finds the host again on its own schedule).
		eventually(t, 150*time.Second, "h1 reaching srv on h3 again and seeing h3 ready", func() error {
			if ready == 0 && nodeState(ctx, h1, "h3", swarm.NodeStateReady) == nil {
				ready = time.Since(start)
			}
			if reach == 0 && probe() == nil {
				reach = time.Since(start)
			}
			if ready == 0 || reach == 0 {
				return fmt.Errorf("overlay back after %s, h3 ready after %s", reach, ready)
			}
			return nil
		})
		eventually(t, 20*time.Second, "h3's published port answering after the join", func() error { return hello(addr) })
		cs, _ := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", hosts.LabelRole+"="+hosts.RoleCut), filters.Arg("label", hosts.LabelHosts+"="+prefix))})
		if len(cs) != 0 {
			t.Errorf("%d cut helpers left after the join", len(cs))
		}
		t.Logf("host-partition: cut in %s, h1 saw h3 down %s after the cut; join %s, overlay back %s, h3 ready %s after the join",
			cut.Round(10*time.Millisecond), seenDown.Round(100*time.Millisecond), joined.Round(10*time.Millisecond), reach.Round(100*time.Millisecond), ready.Round(100*time.Millisecond))
	})

	// Every exit path heals: a cut host that dies comes back whole (its cut
	// died with its namespace), and a cut left in place is removed with the
	// hosts (the cleanup checks that nothing labelled is left).
	t.Run("a cut host killed and started, then cut for the delete", func(t *testing.T) {
		if err := ctl.Cut(ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		if err := ctl.Kill(ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := ctl.Start(ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		t.Logf("a cut and killed h2 started and ready in %s", time.Since(start).Round(100*time.Millisecond))
		cs, _ := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", hosts.LabelRole+"="+hosts.RoleCut), filters.Arg("label", hosts.LabelHosts+"="+prefix))})
		if len(cs) != 0 {
			t.Errorf("%d cut helpers left after the start", len(cs))
		}
		if err := nodeState(ctx, h1, "h2", swarm.NodeStateReady); err != nil {
			t.Error(err)
		}
		if err := ctl.Cut(ctx, "h2"); err != nil {
			t.Fatal(err)
		}
	})
	inner = innerContainerIDs(t, sw)
	if len(inner) == 0 {
		t.Error("no container runs inside the hosts before their delete: the cgroup check would prove nothing")
	}
}

// hello reads "hello from" from a TCP server.
func hello(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	if !strings.Contains(string(b), "hello from") {
		return fmt.Errorf("%s said %q (%v)", addr, b, err)
	}
	return nil
}

// nodeState checks the state a manager gives a node.
func nodeState(ctx context.Context, manager *client.Client, host string, want swarm.NodeState) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nodes, err := manager.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return err
	}
	var states []string
	for _, n := range nodes {
		if n.Description.Hostname == host {
			if n.Status.State == want {
				return nil
			}
			states = append(states, string(n.Status.State))
		}
	}
	return fmt.Errorf("%s is %v, not %s", host, states, want)
}

// freePortIn finds a free port on 127.0.0.1 in [lo, hi].
func freePortIn(t *testing.T, lo, hi int) int {
	t.Helper()
	for range 200 {
		if p := lo + rand.IntN(hi-lo+1); claimPorts(t, p) {
			return p
		}
	}
	t.Fatalf("no free port in %d-%d", lo, hi)
	return 0
}
