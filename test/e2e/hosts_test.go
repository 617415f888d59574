package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/pgha/pgha/pkg/hosts"
)

// Helpers for the tests on test hosts (Docker engines in containers).

// checkHostsGone: after a delete, nothing labelled with the prefix is left on
// this engine, nor the hosts' socket directory dir, nor a cgroup of the
// inner containers (their IDs) on this machine.
func checkHostsGone(t *testing.T, prefix, dir string, inner []string) {
	t.Helper()
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", hosts.LabelHosts+"="+prefix))
	cs, err1 := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	ns, err2 := docker.NetworkList(ctx, network.ListOptions{Filters: f})
	vs, err3 := docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if len(cs)+len(ns)+len(vs.Volumes) != 0 {
		t.Errorf("left on this engine after delete: %d containers, %d networks, %d volumes", len(cs), len(ns), len(vs.Volumes))
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket directories left under %s: %v", dir, err)
	}
	for _, id := range inner {
		if dirs := hosts.CgroupDirs(id); len(dirs) > 0 {
			t.Errorf("cgroups of inner container %.12s left: %v", id, dirs)
		}
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
