package engine

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
	"github.com/docker/docker/client"
)

// Where the engine is chosen from, in the docker CLI's order.
const (
	SourceFlag          = "--context"
	SourceDockerHost    = "DOCKER_HOST"
	SourceDockerContext = "DOCKER_CONTEXT"
	SourceConfig        = "the current context in the Docker CLI config"
	SourceDefault       = "the default socket"
)

// DefaultContext is the docker CLI's name for "DOCKER_HOST or the default socket".
const DefaultContext = "default"

// SocketEnv overrides the engine-side path of the engine's socket, which the
// guard mounts, when pgha cannot tell it (an engine behind ssh or TCP whose
// socket is not at the usual place).
const SocketEnv = "PGHA_ENGINE_SOCKET"

// defaultSocket is where a Linux engine listens, on the engine's host.
const defaultSocket = "/var/run/docker.sock"

// Endpoint says where the engine is and how the cluster's published ports are
// reached from here.
type Endpoint struct {
	// Context is the docker context used ("default" when DOCKER_HOST or the
	// default socket is).
	Context string `json:"context"`
	// Source says what chose it: SourceFlag, SourceDockerHost, ...
	Source string `json:"source"`
	// Host is the engine's address: unix:///var/run/docker.sock, tcp://h:2376, ssh://u@h.
	Host string `json:"host"`
	// PublishHost is the address at which ports published on 127.0.0.1 of
	// the engine's host are reached from here: 127.0.0.1 for a local engine
	// (and for Docker Desktop, colima, OrbStack, which forward them), the
	// engine's host name for one reached over TCP or ssh.
	PublishHost string `json:"publishHost"`
	// Remote is true when the engine runs on another machine, so that its
	// loopback ports are not this machine's.
	Remote bool `json:"remote"`
	opts   []client.Opt
}

// Locate resolves the engine exactly as the docker CLI does: the --context
// flag, then DOCKER_HOST, then DOCKER_CONTEXT, then the current context in
// the Docker CLI config ($DOCKER_CONFIG or ~/.docker), then the default
// socket. Contexts are read with the Docker CLI's own context store.
func Locate(contextFlag string) (Endpoint, error) {
	name, source := contextFlag, SourceFlag
	switch {
	case name != "":
	case os.Getenv(client.EnvOverrideHost) != "":
		name, source = DefaultContext, SourceDockerHost
	case os.Getenv("DOCKER_CONTEXT") != "":
		name, source = os.Getenv("DOCKER_CONTEXT"), SourceDockerContext
	default:
		name, source = DefaultContext, SourceDefault
		if cfg, err := config.Load(configDir()); err == nil && cfg.CurrentContext != "" {
			name, source = cfg.CurrentContext, SourceConfig
		}
	}
	if name == DefaultContext {
		host := os.Getenv(client.EnvOverrideHost)
		if host == "" {
			host = client.DefaultDockerHost
		}
		if source == SourceConfig {
			source = SourceDefault
		}
		ep := Endpoint{Context: DefaultContext, Source: source, Host: host,
			opts: []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}}
		ep.PublishHost, ep.Remote = publishHost(host)
		return ep, nil
	}
	s := contextStore()
	meta, err := s.GetMetadata(name)
	if err != nil {
		return Endpoint{}, fmt.Errorf("docker context %q (from %s): %w; list them with `docker context ls`", name, source, err)
	}
	epMeta, err := docker.EndpointFromContext(meta)
	if err != nil {
		return Endpoint{}, fmt.Errorf("docker context %q: %w", name, err)
	}
	ep, err := docker.WithTLSData(s, name, epMeta)
	if err != nil {
		return Endpoint{}, fmt.Errorf("docker context %q: reading its TLS material: %w", name, err)
	}
	opts, err := ep.ClientOpts()
	if err != nil {
		return Endpoint{}, fmt.Errorf("docker context %q: %w", name, err)
	}
	out := Endpoint{Context: name, Source: source, Host: epMeta.Host, opts: opts}
	out.PublishHost, out.Remote = publishHost(epMeta.Host)
	return out, nil
}

// configDir is the Docker CLI config directory: $DOCKER_CONFIG, else
// ~/.docker (read now, not cached as the CLI's config.Dir is).
func configDir() string {
	if d := os.Getenv(config.EnvOverrideConfigDir); d != "" {
		return d
	}
	return config.Dir()
}

// contextStore is the Docker CLI's context store ($DOCKER_CONFIG/contexts).
func contextStore() *store.ContextStore {
	return contextStoreIn(filepath.Join(configDir(), "contexts"))
}

func contextStoreIn(dir string) *store.ContextStore {
	return store.New(dir, store.NewConfig(
		func() any { return &map[string]any{} },
		store.EndpointTypeGetter(docker.DockerEndpoint, func() any { return &docker.EndpointMeta{} }),
	))
}

// SaveContext writes, into the Docker CLI config directory configDir, a
// docker context named name whose engine is host, as `DOCKER_CONFIG=configDir
// docker context create NAME --docker host=HOST` does (tests use it where
// the docker CLI may be missing).
func SaveContext(configDir, name, host, description string) error {
	return contextStoreIn(filepath.Join(configDir, "contexts")).CreateOrUpdate(store.Metadata{
		Name:      name,
		Metadata:  map[string]any{"Description": description},
		Endpoints: map[string]any{docker.DockerEndpoint: docker.EndpointMeta{Host: host}},
	})
}

// publishHost says where ports published on the engine host's loopback are
// reached from here. A unix socket (or a Windows pipe) is a local engine, or
// a desktop VM that forwards its ports to this machine's loopback; TCP and
// ssh name the engine's machine.
func publishHost(host string) (string, bool) {
	u, err := url.Parse(host)
	if err != nil {
		return "127.0.0.1", false
	}
	switch u.Scheme {
	case "tcp", "http", "https", "ssh":
		h := u.Hostname()
		if h == "" || isLoopback(h) {
			return "127.0.0.1", false
		}
		return h, true
	}
	return "127.0.0.1", false
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// String names the engine for messages: "unix:///var/run/docker.sock
// (context default)".
func (e Endpoint) String() string {
	return fmt.Sprintf("%s (context %s, from %s)", e.Host, e.Context, e.Source)
}

// socketPath is the engine-side path of the engine's socket: what a container
// on that engine mounts to talk to it. info is the engine's own description.
//
//   - PGHA_ENGINE_SOCKET, when set, wins;
//   - a unix socket on Linux outside Docker Desktop is the engine's own path
//     (resolved through symlinks): a local engine, a rootless one included;
//   - anything else (Docker Desktop, colima or OrbStack seen from macOS,
//     TCP, ssh) is a Linux engine with its socket at /var/run/docker.sock.
func socketPath(host, operatingSystem string) string {
	if p := os.Getenv(SocketEnv); p != "" {
		return p
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" || runtime.GOOS != "linux" || strings.Contains(operatingSystem, "Docker Desktop") {
		return defaultSocket
	}
	p := u.Path
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	return p
}

// ErrNoEngine wraps every failure to reach the engine.
var ErrNoEngine = errors.New("cannot reach the Docker engine")
