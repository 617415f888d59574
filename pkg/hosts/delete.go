package hosts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/engine"
)

// Delete removes the test hosts of a prefix: what carries the label
// io.pgha.hosts=<prefix> on the outer engine (containers, network, volumes)
// and the socket directories their labels name. What is already gone counts
// as removed, so Delete also cleans a partial creation and can run twice.
//
// A running host is emptied first through its own engine (services and
// containers force-removed), so that its engine removes its containers'
// cgroups: with the machine's cgroup hierarchy shared, a host removed while
// its containers run would leave their empty cgroups behind.
func Delete(ctx context.Context, api client.APIClient, prefix string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("test hosts: prefix %q is not a valid prefix", prefix)
	}
	var errs []error
	dirs := map[string]bool{}

	list, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: prefixFilter(prefix, "")})
	if err != nil {
		return fmt.Errorf("listing the containers of test hosts %s: %w", prefix, err)
	}
	// Empty the running hosts while the swarm still has its managers (a
	// manager without quorum would hang the service calls), then remove.
	// Containers that died with a host killed earlier (the host-down
	// fault) left their cgroups then: swept once the hosts are gone.
	drained, inner := drainHosts(ctx, list)
	defer sweepCgroups(inner)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range list {
		if d := c.Labels[LabelSocketDir]; d != "" {
			dirs[d] = true
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := removeHost(ctx, api, c, drained[c.ID]); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	nets, err := api.NetworkList(ctx, network.ListOptions{Filters: prefixFilter(prefix, "")})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing the networks of test hosts %s: %w", prefix, err))
	}
	for _, n := range nets {
		if err := api.NetworkRemove(ctx, n.ID); err != nil && !engine.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
		}
	}

	vols, err := api.VolumeList(ctx, volume.ListOptions{Filters: prefixFilter(prefix, "")})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing the volumes of test hosts %s: %w", prefix, err))
	}
	// Each volume holds an engine's unpacked images: removed at once.
	for _, v := range vols.Volumes {
		if d := v.Labels[LabelSocketDir]; d != "" {
			dirs[d] = true
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := api.VolumeRemove(ctx, v.Name, true); err != nil && !engine.IsNotFound(err) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	for _, d := range sorted {
		if !ownSocketDir(d, prefix) {
			errs = append(errs, fmt.Errorf("not removing %s: it is not a socket directory of test hosts %s (<state dir>/%s/hN)", d, prefix, prefix))
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("removing the socket directory %s: %w", d, err))
			continue
		}
		_ = os.Remove(filepath.Dir(d)) // <state dir>/<prefix>, when empty
	}
	if len(errs) > 0 {
		return fmt.Errorf("deleting test hosts %s: %w\nwhat is listed above is left; run delete again", prefix, errors.Join(errs...))
	}
	return nil
}

var hostDirRE = regexp.MustCompile(`^h[0-9]+$`)

// ownSocketDir says whether dir looks like a socket directory this package
// made for the prefix: <absolute state dir>/<prefix>/hN.
func ownSocketDir(dir, prefix string) bool {
	return filepath.IsAbs(dir) && filepath.Clean(dir) == dir &&
		hostDirRE.MatchString(filepath.Base(dir)) && filepath.Base(filepath.Dir(dir)) == prefix
}

// removeHost removes a host's container. An emptied engine has nothing left
// to stop, so it is killed; one that could not be emptied gets a graceful
// stop first, in which dockerd stops its containers.
func removeHost(ctx context.Context, api client.APIClient, c container.Summary, drained bool) error {
	name := c.ID[:12]
	if len(c.Names) > 0 {
		name = c.Names[0][1:]
	}
	if c.State == container.StateRunning && !drained {
		timeout := stopTimeout
		// A stop that fails is no matter: the removal below kills it.
		_ = api.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout})
	}
	if err := api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !engine.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", name, err)
	}
	return nil
}

// drainHosts removes, best effort and within 2 minutes (a busy machine is
// slow at it), the swarm's services (through one manager) and then every
// container of every running host's engine. It says which hosts (by
// container ID) have no container left, and returns the IDs of the inner
// containers it found.
func drainHosts(ctx context.Context, list []container.Summary) (drained map[string]bool, inner []string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	clients := map[string]*client.Client{}
	for _, c := range list {
		if c.State != container.StateRunning || c.Labels[LabelSocketDir] == "" || c.Labels[LabelRole] != RoleEngine {
			continue
		}
		h := Host{Name: c.Labels[LabelNode], Socket: SocketURL(c.Labels[LabelSocketDir])}
		if cli, err := h.Client(); err == nil {
			defer cli.Close()
			clients[c.ID] = cli
		}
	}
	for _, cli := range clients {
		info, err := cli.Info(ctx)
		if err != nil || !info.Swarm.ControlAvailable {
			continue
		}
		if svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{}); err == nil {
			for _, s := range svcs {
				_ = cli.ServiceRemove(ctx, s.ID)
			}
			break
		}
	}
	drained = map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, cli := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids, empty := emptyEngine(ctx, cli)
			mu.Lock()
			defer mu.Unlock()
			inner = append(inner, ids...)
			if empty {
				drained[id] = true
			}
		}()
	}
	wg.Wait()
	return drained, inner
}

// sweepCgroups removes the empty cgroups that the machine's cgroup hierarchy
// (shared with the hosts, cgroup v1) still holds for the inner containers of
// ids: best effort, and only directories named by those container IDs.
func sweepCgroups(ids []string) {
	for _, id := range ids {
		if !containerIDRE.MatchString(id) {
			continue
		}
		for _, d := range CgroupDirs(id) {
			_ = os.Remove(d) // rmdir: fails, as it should, on a cgroup with tasks
		}
	}
}

// sweepDead removes the cgroups of the containers that died with a killed
// host, once its engine is back: nothing removed them (the engine died with
// them), and the swarm may later remove the containers themselves, after
// which no delete would know their IDs.
func sweepDead(ctx context.Context, cli client.APIClient) {
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return
	}
	var dead []string
	for _, c := range cs {
		if c.State != "running" && c.State != "paused" && c.State != "restarting" {
			dead = append(dead, c.ID)
		}
	}
	sweepCgroups(dead)
}

var containerIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CgroupDirs are the directories the machine's cgroup v1 hierarchy holds for
// an inner container (its engine, in a host, writes them under docker/).
func CgroupDirs(id string) []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/docker/" + id)
	return dirs
}

// emptyEngine force-removes every container of an engine; it returns their
// IDs and says whether none is left.
func emptyEngine(ctx context.Context, cli *client.Client) (ids []string, empty bool) {
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, false
	}
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}()
	}
	wg.Wait()
	left, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	return ids, err == nil && len(left) == 0
}
