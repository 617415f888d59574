// Package provision owns everything that talks to the Docker engine: images,
// the network, volumes, containers, readiness waits and teardown.
package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/client"
)

// Connect makes the process's one Docker client, negotiating the API version
// with the engine (which may be as old as Docker 20.10, API 1.41), and checks
// that the engine answers.
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("configuring the Docker client: %w (check DOCKER_HOST)", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("cannot reach the Docker engine at %s: %v\n(is the Docker daemon running? set DOCKER_HOST to use another engine)", cli.DaemonHost(), err)
	}
	cli.NegotiateAPIVersion(ctx)
	return cli, nil
}

// Progress receives the steps of long operations. The CLI renders them.
type Progress interface {
	// Start begins a step, such as "Starting etcd".
	Start(title string)
	// Detail shows a line of output of the current step (build output, a wait).
	Detail(line string)
	// End closes the current step; summary replaces its title when non-empty.
	End(ok bool, summary string)
	// Info prints a line of its own, between steps.
	Info(msg string)
	// Warn reports something the user should know.
	Warn(msg string)
}

// Provisioner carries the Docker client and the progress display.
type Provisioner struct {
	Docker   *client.Client
	Progress Progress
}
