// Package engine is pgha's seam to a Docker engine: where it is (docker
// contexts, DOCKER_HOST), how its published ports are reached, and the few
// container operations every layer above shares (inspect, exec, logs, files).
// Everything above depends on client.APIClient, never on the concrete client,
// so that unit tests can run against a fake engine.
package engine

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// Engine is one Docker engine and where it is.
type Engine struct {
	API      client.APIClient
	Endpoint Endpoint
}

// Connect makes the process's one Docker client for the located engine,
// negotiating the API version (the engine may be as old as Docker 20.10, API
// 1.41), and checks that the engine answers.
func Connect(ctx context.Context, ep Endpoint) (*Engine, error) {
	cli, err := client.NewClientWithOpts(ep.opts...)
	if err != nil {
		return nil, fmt.Errorf("configuring the Docker client for %s: %w", ep, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		cli.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w at %s: %v\n(is the Docker daemon running? choose another engine with --context, DOCKER_CONTEXT or DOCKER_HOST)", ErrNoEngine, ep, err)
	}
	cli.NegotiateAPIVersion(ctx)
	return &Engine{API: cli, Endpoint: ep}, nil
}

// New wraps an API client (a fake one in tests) as a local engine.
func New(api client.APIClient) *Engine {
	return &Engine{API: api, Endpoint: Endpoint{Context: DefaultContext, Source: SourceDefault, Host: client.DefaultDockerHost, PublishHost: "127.0.0.1"}}
}

// Close releases the client.
func (e *Engine) Close() error { return e.API.Close() }

// Addr is the address of a port published on the engine host's loopback, as
// reached from here.
func (e *Engine) Addr(port int) string {
	return net.JoinHostPort(e.Endpoint.PublishHost, strconv.Itoa(port))
}

// SocketPath is the engine's socket as its own host sees it: what a container
// mounts to talk to the engine (the guard).
func (e *Engine) SocketPath(ctx context.Context) (string, error) {
	info, err := e.API.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("asking the engine about itself: %w", err)
	}
	return socketPath(e.Endpoint.Host, info.OperatingSystem), nil
}

// IsNotFound says whether the engine answered that the object does not
// exist: the only error that means "absent".
func IsNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
