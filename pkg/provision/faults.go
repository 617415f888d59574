package provision

import (
	"context"
	"fmt"
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
		return f.unpinHosts(ctx, node)
	}
	return fmt.Errorf("unknown fault %q", fault)
}

// InsideRecovery runs psql inside the node's container over its Unix socket.
func (f Faults) InsideRecovery(ctx context.Context, node string) (bool, error) {
	out, err := f.exec(ctx, f.Topo.ContainerName(node), "psql", "-XAtq", "-c", "SET statement_timeout = '1s'", "-c", "SELECT pg_is_in_recovery()")
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
func (f Faults) exec(ctx context.Context, name string, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	res, err := Exec(ctx, f.Docker, name, nil, cmd...)
	if err != nil {
		return "", err
	}
	return res.Stdout + res.Stderr, res.Err(cmd[0])
}
