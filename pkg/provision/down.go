package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
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

// Down removes a cluster's containers and network; with volumes also its data
// volumes and secrets. It touches only resources that carry the cluster's
// label; a resource already gone counts as removed.
func Down(ctx context.Context, docker *client.Client, name string, volumes bool) (DownResult, error) {
	var res DownResult
	cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: clusterFilter(name)})
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
		go func(id, cname string, running bool) {
			defer wg.Done()
			// Keeping the data means a clean shutdown first, so that PostgreSQL
			// and etcd restart without crash recovery.
			if running && !volumes {
				_ = docker.ContainerStop(ctx, id, container.StopOptions{})
			}
			err := docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !client.IsErrNotFound(err) {
				errs = append(errs, fmt.Errorf("removing container %s: %w", cname, err))
				return
			}
			res.Containers = append(res.Containers, cname)
		}(c.ID, containerName(c), c.State == "running")
	}
	wg.Wait()
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}

	nets, err := docker.NetworkList(ctx, network.ListOptions{Filters: clusterFilter(name)})
	if err != nil {
		return res, fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range nets {
		if err := docker.NetworkRemove(ctx, n.ID); err != nil && !client.IsErrNotFound(err) {
			return res, fmt.Errorf("removing network %s: %w", n.Name, err)
		}
		res.Networks = append(res.Networks, n.Name)
	}
	if !volumes {
		return res, nil
	}
	vols, err := docker.VolumeList(ctx, volume.ListOptions{Filters: clusterFilter(name)})
	if err != nil {
		return res, fmt.Errorf("listing volumes: %w", err)
	}
	for _, v := range vols.Volumes {
		if err := docker.VolumeRemove(ctx, v.Name, true); err != nil && !client.IsErrNotFound(err) {
			return res, fmt.Errorf("removing volume %s: %w", v.Name, err)
		}
		res.Volumes = append(res.Volumes, v.Name)
	}
	store, err := secrets.For(name)
	if err != nil {
		return res, err
	}
	if _, statErr := store.Load(); statErr == nil || !errors.Is(statErr, os.ErrNotExist) {
		if err := store.Remove(); err != nil {
			return res, fmt.Errorf("removing secrets in %s: %w", store.Dir, err)
		}
		res.Secrets = store.Dir
	}
	return res, nil
}

func containerName(c container.Summary) string {
	if len(c.Names) > 0 {
		return c.Names[0][1:]
	}
	return c.Labels[topology.LabelNode]
}
