package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolate gives the test its own Docker CLI config and no engine variables.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONTEXT", "")
	t.Setenv(SocketEnv, "")
	os.Unsetenv("DOCKER_HOST")
	os.Unsetenv("DOCKER_CONTEXT")
	os.Unsetenv(SocketEnv)
	return dir
}

// Locate picks the engine in the docker CLI's order: --context, DOCKER_HOST,
// DOCKER_CONTEXT, the config's current context, the default socket.
func TestLocateOrder(t *testing.T) {
	dir := isolate(t)
	if err := SaveContext(dir, "lab", "unix:///tmp/lab/docker.sock", "a test"); err != nil {
		t.Fatal(err)
	}
	if err := SaveContext(dir, "remote", "tcp://build-box.example:2376", ""); err != nil {
		t.Fatal(err)
	}
	check := func(flag, wantContext, wantSource, wantHost string) {
		t.Helper()
		ep, err := Locate(flag)
		if err != nil {
			t.Fatal(err)
		}
		if ep.Context != wantContext || ep.Source != wantSource || ep.Host != wantHost {
			t.Errorf("Locate(%q) = %s %q %s, want %s %q %s", flag, ep.Context, ep.Source, ep.Host, wantContext, wantSource, wantHost)
		}
	}
	check("", DefaultContext, SourceDefault, "unix:///var/run/docker.sock")

	// The config's current context.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"currentContext":"lab"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	check("", "lab", SourceConfig, "unix:///tmp/lab/docker.sock")
	// DOCKER_CONTEXT beats the config.
	t.Setenv("DOCKER_CONTEXT", "remote")
	check("", "remote", SourceDockerContext, "tcp://build-box.example:2376")
	// DOCKER_HOST beats DOCKER_CONTEXT.
	t.Setenv("DOCKER_HOST", "unix:///run/other.sock")
	check("", DefaultContext, SourceDockerHost, "unix:///run/other.sock")
	// --context beats everything.
	check("lab", "lab", SourceFlag, "unix:///tmp/lab/docker.sock")

	if _, err := Locate("nonesuch"); err == nil || !strings.Contains(err.Error(), `docker context "nonesuch" (from --context)`) {
		t.Errorf("an unknown context: %v", err)
	}
}

func TestPublishHost(t *testing.T) {
	cases := map[string]struct {
		host   string
		remote bool
	}{
		"unix:///var/run/docker.sock":          {"127.0.0.1", false},
		"unix:///Users/me/.colima/docker.sock": {"127.0.0.1", false},
		"npipe:////./pipe/docker_engine":       {"127.0.0.1", false},
		"tcp://127.0.0.1:2375":                 {"127.0.0.1", false},
		"tcp://localhost:2375":                 {"127.0.0.1", false},
		"tcp://build-box.example:2376":         {"build-box.example", true},
		"ssh://me@10.1.2.3":                    {"10.1.2.3", true},
	}
	for in, want := range cases {
		h, remote := publishHost(in)
		if h != want.host || remote != want.remote {
			t.Errorf("publishHost(%s) = %s %v, want %s %v", in, h, remote, want.host, want.remote)
		}
	}
}

func TestSocketPath(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	real := filepath.Join(dir, "real.sock")
	if err := os.WriteFile(real, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	// A local socket is the engine's own path, through symlinks.
	if got := socketPath("unix://"+link, "Debian GNU/Linux 12"); got != real {
		t.Errorf("local socket via a symlink: %s", got)
	}
	// Docker Desktop and remote engines: the engine host's usual socket.
	for _, host := range []string{"unix://" + link, "tcp://box:2376", "ssh://me@box"} {
		os := "Debian"
		if strings.HasPrefix(host, "unix") {
			os = "Docker Desktop"
		}
		if got := socketPath(host, os); got != "/var/run/docker.sock" {
			t.Errorf("socketPath(%s, %s) = %s", host, os, got)
		}
	}
	t.Setenv(SocketEnv, "/custom/docker.sock")
	if got := socketPath("tcp://box:2376", ""); got != "/custom/docker.sock" {
		t.Errorf("%s ignored: %s", SocketEnv, got)
	}
}
