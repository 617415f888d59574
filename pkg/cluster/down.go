package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// DownResult lists what Down removed.
type DownResult struct {
	Containers []string `json:"containers"`
	Networks   []string `json:"networks"`
	Volumes    []string `json:"volumes"`
	Secrets    string   `json:"secrets,omitempty"`
}

// Empty says whether nothing was removed.
func (r DownResult) Empty() bool {
	return len(r.Containers)+len(r.Networks)+len(r.Volumes) == 0 && r.Secrets == ""
}

// downStopTimeout bounds the graceful stop before a container is removed
// with its data kept: the Patroni containers' own 60 s applies below it.
const downStopTimeout = 90 * time.Second

// Down removes a cluster's containers and network; with volumes also its data
// volumes and secrets. It touches only resources that carry the cluster's
// label; a resource already gone counts as removed.
func (d *Docker) Down(ctx context.Context, name string, volumes bool) (DownResult, error) {
	if d.swarm != nil {
		return d.swarm.Down(ctx, name, volumes)
	}
	var res DownResult
	api := d.Engine.API
	cs, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: engine.ClusterFilter(name)})
	if err != nil {
		return res, fmt.Errorf("listing containers: %w", err)
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for _, c := range cs {
		wg.Add(1)
		go func(id, cname string, state container.ContainerState) {
			defer wg.Done()
			// Keeping the data means a clean shutdown first, so that PostgreSQL
			// and etcd restart without crash recovery. A paused container
			// cannot take a signal: it is unpaused first.
			if !volumes && (state == container.StateRunning || state == container.StatePaused) {
				sctx, cancel := context.WithTimeout(ctx, downStopTimeout)
				if state == container.StatePaused {
					_ = api.ContainerUnpause(sctx, id)
				}
				_ = api.ContainerStop(sctx, id, container.StopOptions{})
				cancel()
			}
			err := api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !engine.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("removing container %s: %w", cname, err))
				return
			}
			res.Containers = append(res.Containers, cname)
		}(c.ID, engine.SummaryName(c), c.State)
	}
	wg.Wait()
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}

	nets, err := api.NetworkList(ctx, network.ListOptions{Filters: engine.ClusterFilter(name)})
	if err != nil {
		return res, fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range nets {
		if err := api.NetworkRemove(ctx, n.ID); err != nil && !engine.IsNotFound(err) {
			return res, fmt.Errorf("removing network %s: %w", n.Name, err)
		}
		res.Networks = append(res.Networks, n.Name)
	}
	if !volumes {
		return res, nil
	}
	vols, err := api.VolumeList(ctx, volume.ListOptions{Filters: engine.ClusterFilter(name)})
	if err != nil {
		return res, fmt.Errorf("listing volumes: %w", err)
	}
	for _, v := range vols.Volumes {
		if err := api.VolumeRemove(ctx, v.Name, true); err != nil && !engine.IsNotFound(err) {
			return res, fmt.Errorf("removing volume %s: %w", v.Name, err)
		}
		res.Volumes = append(res.Volumes, v.Name)
	}
	res.Secrets, err = removeLocalSecrets(name)
	return res, err
}

// removeLocalSecrets removes the cluster's state directory (its secrets)
// and returns it; "" when there was none.
func removeLocalSecrets(name string) (string, error) {
	store, err := secrets.For(name)
	if err != nil {
		return "", err
	}
	if _, statErr := store.Load(); statErr == nil || !errors.Is(statErr, os.ErrNotExist) {
		if err := store.Remove(); err != nil {
			return "", fmt.Errorf("removing secrets in %s: %w", store.Dir, err)
		}
		return store.Dir, nil
	}
	return "", nil
}

// RemoveMembers removes members' containers. A container that is not the
// cluster's own is refused, not removed.
func (d *Docker) RemoveMembers(ctx context.Context, topo topology.Cluster, nodes []string) error {
	if d.swarm != nil {
		return d.swarm.RemoveMembers(ctx, topo, nodes)
	}
	var errs []error
	for _, node := range nodes {
		name := topo.ContainerName(node)
		c, err := d.Engine.Inspect(ctx, topo.Name, name)
		switch {
		case err != nil:
			return err
		case c.Exists() && !c.Ours:
			return fmt.Errorf("container %s does not belong to cluster %s; pgha will not remove it", name, topo.Name)
		case c.Exists():
			if err := d.removeContainer(ctx, topo, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeContainer removes a container; one the engine is removing already
// (an interrupted pgha asked for it) is waited for until it is gone.
func (d *Docker) removeContainer(ctx context.Context, topo topology.Cluster, name string) error {
	err := d.Engine.API.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
	switch {
	case err == nil || engine.IsNotFound(err):
		return nil
	case !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already in progress"):
		return fmt.Errorf("removing %s: %w", name, err)
	}
	werr := poll.For(ctx, time.Minute, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		c, err := d.Engine.Inspect(ctx, topo.Name, name)
		return err == nil && !c.Exists(), err
	})
	if werr != nil {
		return fmt.Errorf("removing %s: %w (and it was still there: %v)", name, err, werr)
	}
	return nil
}

// RemoveVolumes removes members' data volumes (of topo's data generation).
// A volume that is not the cluster's own is refused, not removed.
func (d *Docker) RemoveVolumes(ctx context.Context, topo topology.Cluster, nodes []string) error {
	if d.swarm != nil {
		return d.swarm.RemoveVolumes(ctx, topo, nodes)
	}
	var errs []error
	for _, node := range nodes {
		name := topo.VolumeName(node)
		owned, err := d.volumeOwned(ctx, topo.Name, name)
		if err != nil {
			return err
		}
		if !owned {
			return fmt.Errorf("volume %s does not belong to cluster %s; pgha will not remove it", name, topo.Name)
		}
		if err := d.Engine.API.VolumeRemove(ctx, name, true); err != nil && !engine.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
