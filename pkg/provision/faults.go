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
		// This also drops the container's published ports until it reconnects.
		return f.Docker.NetworkDisconnect(ctx, f.Topo.NetworkName(), name, true)
	}
	return fmt.Errorf("unknown fault %q", fault)
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
		return f.Docker.NetworkConnect(ctx, f.Topo.NetworkName(), name, &network.EndpointSettings{Aliases: []string{node}})
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
