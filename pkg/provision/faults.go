package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/pgha/pgha/pkg/verify"
)

// Faults injects failover-test faults into a cluster's containers.
type Faults struct {
	Docker *client.Client
	Topo   topology.Cluster
}

var _ verify.Injector = Faults{}

// Inject applies a fault to a node's container.
func (f Faults) Inject(ctx context.Context, node, fault string) error {
	name := f.Topo.ContainerName(node)
	switch fault {
	case verify.FaultStop:
		return f.Docker.ContainerStop(ctx, name, container.StopOptions{}) // the container's 60 s stop timeout
	case verify.FaultKill:
		return f.Docker.ContainerKill(ctx, name, "SIGKILL")
	case verify.FaultPause:
		return f.Docker.ContainerPause(ctx, name)
	case verify.FaultPartition:
		if err := f.pinHosts(ctx, node); err != nil {
			return err
		}
		// This also drops the container's published ports until it reconnects.
		return f.Docker.NetworkDisconnect(ctx, f.Topo.NetworkName(), name, true)
	}
	return fmt.Errorf("unknown fault %q", fault)
}

// hostsMark ends the /etc/hosts lines a partition adds.
const hostsMark = "# pgha-partition"

// pinHosts writes the cluster's names and addresses into the node's
// /etc/hosts before it is cut off. Cut off from its only network, a container
// loses Docker's DNS too: every lookup then hangs for seconds, which stalls
// Patroni's loop far past its retry_timeout and leaves an isolated primary
// running long after the replicas elected a new one. With the names pinned,
// connections fail at once (no route), as in a real partition, and Patroni
// demotes on time.
func (f Faults) pinHosts(ctx context.Context, node string) error {
	cs, err := f.Docker.ContainerList(ctx, container.ListOptions{Filters: clusterFilter(f.Topo.Name)})
	if err != nil {
		return fmt.Errorf("listing the cluster's containers: %w", err)
	}
	var lines strings.Builder
	for _, c := range cs {
		n, role := c.Labels[topology.LabelNode], c.Labels[topology.LabelRole]
		ep := c.NetworkSettings.Networks[f.Topo.NetworkName()]
		if n == node || n == "" || ep == nil || ep.IPAddress == "" {
			continue
		}
		names := n
		if role == topology.RoleObjectStore {
			names += " " + topology.ObjectStoreAlias
		}
		fmt.Fprintf(&lines, "%s\t%s %s\n", ep.IPAddress, names, hostsMark)
	}
	return f.rootShell(ctx, node, `printf '%s' "$1" >> /etc/hosts`, lines.String())
}

// unpinHosts removes what pinHosts added (/etc/hosts is a bind mount: it is
// rewritten in place, not replaced).
func (f Faults) unpinHosts(ctx context.Context, node string) error {
	return f.rootShell(ctx, node, `grep -v -- "$1" /etc/hosts > /tmp/pgha-hosts; cat /tmp/pgha-hosts > /etc/hosts; rm -f /tmp/pgha-hosts`, hostsMark)
}

func (f Faults) rootShell(ctx context.Context, node, script, arg string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := execAs(ctx, f.Docker, f.Topo.ContainerName(node), "root", nil, "sh", "-c", script, "sh", arg)
	if err != nil {
		return err
	}
	return res.Err("editing /etc/hosts in " + f.Topo.ContainerName(node))
}

// Heal undoes a fault: start, unpause or reconnect (under the node's alias).
func (f Faults) Heal(ctx context.Context, node, fault string) error {
	name := f.Topo.ContainerName(node)
	switch fault {
	case verify.FaultStop, verify.FaultKill:
		return f.Docker.ContainerStart(ctx, name, container.StartOptions{})
	case verify.FaultPause:
		return f.Docker.ContainerUnpause(ctx, name)
	case verify.FaultPartition:
		if err := f.Docker.NetworkConnect(ctx, f.Topo.NetworkName(), name, &network.EndpointSettings{Aliases: []string{node}}); err != nil {
			return err
		}
		// Docker's DNS in the container can take a while to answer again
		// after a reconnect: the pinned names stay until it does.
		dnsErr := f.waitDNS(ctx, node)
		if err := f.unpinHosts(ctx, node); err != nil {
			return err
		}
		if err := f.waitReachable(ctx, node); err != nil {
			return errors.Join(dnsErr, err)
		}
		return nil
	}
	return fmt.Errorf("unknown fault %q", fault)
}

// reachScript connects to each host:port argument through the resolver the
// node's Patroni uses, until all answer or 15 s have passed, and prints the
// ones that did not.
const reachScript = `
import socket, sys, time
deadline = time.time() + 15
while True:
    bad = []
    for hp in sys.argv[1:]:
        host, port = hp.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), 1).close()
        except Exception as e:
            bad.append("%s: %s" % (hp, e))
    if not bad:
        sys.exit(0)
    if time.time() > deadline:
        print("; ".join(bad))
        sys.exit(1)
    time.sleep(0.2)
`

// dnsScript asks the container's own DNS server (the first nameserver of
// /etc/resolv.conf: Docker's embedded one) for each name's A record, past
// /etc/hosts, until every name has an answer or 30 s have passed.
const dnsScript = `
import random, socket, struct, sys, time
server = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
def answers(name):
    q = struct.pack(">HHHHHH", random.randint(0, 65535), 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    try:
        s.sendto(q, (server, 53))
        return struct.unpack(">H", s.recv(512)[6:8])[0] > 0
    except OSError:
        return False
    finally:
        s.close()
deadline = time.time() + 30
while True:
    bad = [n for n in sys.argv[1:] if not answers(n)]
    if not bad:
        sys.exit(0)
    if time.time() > deadline:
        print("no answer from %s for %s" % (server, " ".join(bad)))
        sys.exit(1)
    time.sleep(0.2)
`

// waitDNS waits until Docker's DNS answers for the cluster's names inside the
// node again.
func (f Faults) waitDNS(ctx context.Context, node string) error {
	names := []string{topology.ObjectStoreAlias}
	for _, hp := range f.peers(node) {
		host, _, _ := net.SplitHostPort(hp)
		names = append(names, host)
	}
	out, err := f.exec(ctx, 35*time.Second, f.Topo.ContainerName(node), append([]string{"python3", "-c", dnsScript}, names...)...)
	if err != nil {
		return fmt.Errorf("Docker's DNS in %s after the reconnect: %s (%v)", node, strings.TrimSpace(out), err)
	}
	return nil
}

// peers are the host:port addresses a node's Patroni talks to: every etcd
// member and every other Patroni node's PostgreSQL.
func (f Faults) peers(node string) []string {
	targets := f.Topo.EtcdEndpointsInternal()
	for _, n := range f.Topo.Patroni {
		if n.Name != node {
			targets = append(targets, fmt.Sprintf("%s:%d", n.Name, topology.PostgresPort))
		}
	}
	return targets
}

// waitReachable waits until a reconnected node reaches every etcd member and
// every other Patroni node by name again: a node that cannot is not healed,
// and saying so beats a rejoin timeout with no reason.
func (f Faults) waitReachable(ctx context.Context, node string) error {
	out, err := f.exec(ctx, 20*time.Second, f.Topo.ContainerName(node), append([]string{"python3", "-c", reachScript}, f.peers(node)...)...)
	if err != nil {
		return fmt.Errorf("%s reconnected but cannot reach the cluster: %s (%v)", node, strings.TrimSpace(out), err)
	}
	return nil
}

// InsideRecovery runs psql inside the node's container over its Unix socket.
func (f Faults) InsideRecovery(ctx context.Context, node string) (bool, error) {
	out, err := f.exec(ctx, 3*time.Second, f.Topo.ContainerName(node), "psql", "-XAtq", "-c", "SET statement_timeout = '1s'", "-c", "SELECT pg_is_in_recovery()")
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(out) {
	case "t":
		return true, nil
	case "f":
		return false, nil
	}
	return false, fmt.Errorf("psql in %s: %s", node, strings.TrimSpace(out))
}

// exec runs a command in a container and returns its output; a non-zero exit is an error.
func (f Faults) exec(ctx context.Context, timeout time.Duration, name string, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := Exec(ctx, f.Docker, name, nil, cmd...)
	if err != nil {
		return "", err
	}
	return res.Stdout + res.Stderr, res.Err(cmd[0])
}
