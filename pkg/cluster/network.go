package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/topology"
)

// hostsMark ends the /etc/hosts lines Isolate adds.
const hostsMark = "# pgha-partition"

// Isolate cuts a member off the cluster network. Its container also loses its
// published ports until it joins again.
//
// Cut off from its only network, a container loses Docker's DNS too: every
// lookup then hangs for seconds, which stalls Patroni's loop far past its
// retry_timeout and leaves an isolated primary running long after the
// replicas elected a new one. So the cluster's names are first pinned in the
// member's /etc/hosts: connections then fail at once (no route), as in a
// real partition, and Patroni demotes on time.
func (d *Docker) Isolate(ctx context.Context, topo topology.Cluster, node string) error {
	if d.swarm != nil {
		return d.swarm.Isolate(ctx, topo, node)
	}
	if err := d.pinHosts(ctx, topo, node); err != nil {
		return err
	}
	return d.Engine.API.NetworkDisconnect(ctx, topo.NetworkName(), topo.ContainerName(node), true)
}

// Rejoin attaches an isolated member to the cluster network again under its
// aliases, waits until Docker's DNS answers inside it, removes the pinned
// names and checks that it reaches every etcd member and every other Patroni
// node. A member already attached only has its pins removed.
func (d *Docker) Rejoin(ctx context.Context, topo topology.Cluster, node string) error {
	if d.swarm != nil {
		return d.swarm.Rejoin(ctx, topo, node)
	}
	name := topo.ContainerName(node)
	c, err := d.Engine.Inspect(ctx, topo.Name, name)
	if err != nil {
		return err
	}
	if !c.OnNetwork(topo.NetworkName()) {
		if err := d.Engine.API.NetworkConnect(ctx, topo.NetworkName(), name, &network.EndpointSettings{Aliases: aliases(topo, node)}); err != nil {
			return fmt.Errorf("attaching %s to %s again: %w", name, topo.NetworkName(), err)
		}
	}
	if c.Role != topology.RolePatroni {
		return nil // only Patroni nodes are partitioned with pins
	}
	// Docker's DNS in the container can take a while to answer again after
	// a reconnect: the pinned names stay until it does.
	dnsErr := d.waitDNS(ctx, topo, node)
	if err := d.unpinHosts(ctx, topo, node); err != nil {
		return err
	}
	if err := d.waitReachable(ctx, topo, node); err != nil {
		return errors.Join(dnsErr, err)
	}
	return nil
}

// aliases are a member's names on the cluster network.
func aliases(topo topology.Cluster, node string) []string {
	if node == topology.StoreMinIO || node == topology.StoreVersityGW {
		return []string{node, topology.ObjectStoreAlias}
	}
	return []string{node}
}

// pinHosts writes the cluster's names and addresses into the node's /etc/hosts.
func (d *Docker) pinHosts(ctx context.Context, topo topology.Cluster, node string) error {
	cs, err := d.Engine.API.ContainerList(ctx, container.ListOptions{Filters: engine.ClusterFilter(topo.Name)})
	if err != nil {
		return fmt.Errorf("listing the cluster's containers: %w", err)
	}
	var lines strings.Builder
	for _, c := range cs {
		n := c.Labels[topology.LabelNode]
		if c.NetworkSettings == nil {
			continue
		}
		ep := c.NetworkSettings.Networks[topo.NetworkName()]
		if n == node || n == "" || ep == nil || ep.IPAddress == "" {
			continue
		}
		fmt.Fprintf(&lines, "%s\t%s %s\n", ep.IPAddress, strings.Join(aliases(topo, n), " "), hostsMark)
	}
	return d.rootShell(ctx, topo, node, `printf '%s' "$1" >> /etc/hosts`, lines.String())
}

// unpinHosts removes what pinHosts added (/etc/hosts is a bind mount: it is
// rewritten in place, not replaced).
func (d *Docker) unpinHosts(ctx context.Context, topo topology.Cluster, node string) error {
	return d.rootShell(ctx, topo, node, `grep -v -- "$1" /etc/hosts > /tmp/pgha-hosts; cat /tmp/pgha-hosts > /etc/hosts; rm -f /tmp/pgha-hosts`, hostsMark)
}

func (d *Docker) rootShell(ctx context.Context, topo topology.Cluster, node, script, arg string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := d.Engine.Output(ctx, topo.ContainerName(node), engine.ExecOptions{User: "root"}, "sh", "-c", script, "sh", arg)
	if err != nil {
		return fmt.Errorf("editing /etc/hosts in %s: %w", topo.ContainerName(node), err)
	}
	return nil
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
func (d *Docker) waitDNS(ctx context.Context, topo topology.Cluster, node string) error {
	names := []string{topology.ObjectStoreAlias}
	for _, hp := range peers(topo, node) {
		host, _, _ := net.SplitHostPort(hp)
		names = append(names, host)
	}
	ctx, cancel := context.WithTimeout(ctx, 35*time.Second)
	defer cancel()
	if out, err := d.Engine.Output(ctx, topo.ContainerName(node), engine.ExecOptions{}, append([]string{"python3", "-c", dnsScript}, names...)...); err != nil {
		return fmt.Errorf("no answer from Docker's DNS in %s after the reconnect: %s (%v)", node, strings.TrimSpace(out), err)
	}
	return nil
}

// peers are the host:port addresses a node's Patroni talks to: every etcd
// member and every other Patroni node's PostgreSQL.
func peers(topo topology.Cluster, node string) []string {
	targets := topo.EtcdEndpointsInternal()
	for _, n := range topo.Patroni {
		if n.Name != node {
			targets = append(targets, fmt.Sprintf("%s:%d", n.Name, topology.PostgresPort))
		}
	}
	return targets
}

// waitReachable waits until a reconnected node reaches every etcd member and
// every other Patroni node by name again: a node that cannot is not healed,
// and saying so beats a rejoin timeout with no reason.
func (d *Docker) waitReachable(ctx context.Context, topo topology.Cluster, node string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if out, err := d.Engine.Output(ctx, topo.ContainerName(node), engine.ExecOptions{}, append([]string{"python3", "-c", reachScript}, peers(topo, node)...)...); err != nil {
		return fmt.Errorf("%s reconnected but cannot reach the cluster: %s (%v)", node, strings.TrimSpace(out), err)
	}
	return nil
}
