package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/topology"
)

// failIfDead fails a wait when a member's task has ended, with why and the
// last log lines of its container (read through its node's engine).
func (s *Swarm) failIfDead(ctx context.Context, service string) error {
	t, ok, err := s.currentTask(ctx, service)
	if err != nil || !ok || !taskEnded(t.State) {
		return err
	}
	why := fmt.Sprintf("task %s", t.State)
	if t.Err != "" {
		why += ": " + t.Err
	}
	logs := ""
	if eng := s.Nodes[t.Host]; eng != nil && t.Container != "" {
		logs = "; its last log lines:\n" + eng.LastLogs(ctx, t.Container, 20)
	}
	return fmt.Errorf("service %s on %s: %s%s", service, t.Host, why, logs)
}

// downTaskWait bounds the wait for the tasks' containers to go once their
// services are removed (a primary's shutdown checkpoint included).
const downTaskWait = 90 * time.Second

// Down removes the cluster's services (their tasks stop gracefully), the
// guards on every node, the overlay network and the Swarm secrets; with
// volumes, the data volumes on every node and the local secrets too.
func (s *Swarm) Down(ctx context.Context, name string, volumes bool) (DownResult, error) {
	var res DownResult
	api := s.Engine.API
	svcs, err := s.services(ctx, name)
	if err != nil {
		return res, err
	}
	for _, svc := range svcs {
		if err := api.ServiceRemove(ctx, svc.ID); err != nil && !engine.IsNotFound(err) {
			return res, fmt.Errorf("removing service %s: %w", svc.Spec.Name, err)
		}
		res.Containers = append(res.Containers, svc.Spec.Name)
	}
	// The nodes' own containers: the guards, network-fault helpers, and the
	// tasks' containers until the swarm has removed them.
	var errs []error
	for _, h := range sortedKeys(s.Nodes) {
		eng := s.Nodes[h]
		err := poll.For(ctx, downTaskWait, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
			cs, err := eng.API.ContainerList(ctx, container.ListOptions{All: true, Filters: engine.ClusterFilter(name)})
			if err != nil {
				return false, fmt.Errorf("listing containers on %s: %w", h, err)
			}
			tasks := 0
			for _, c := range cs {
				if c.Labels["com.docker.swarm.task.id"] != "" && !volumes {
					// Keeping the data: the swarm stops it gracefully.
					tasks++
					continue
				}
				if err := eng.API.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !engine.IsNotFound(err) {
					return false, fmt.Errorf("removing container %s on %s: %w", engine.SummaryName(c), h, err)
				}
				res.Containers = append(res.Containers, h+"/"+engine.SummaryName(c))
			}
			return tasks == 0, nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("emptying node %s: %w", h, err))
		}
	}
	if len(errs) > 0 {
		return res, errors.Join(errs...)
	}
	nets, err := api.NetworkList(ctx, network.ListOptions{Filters: engine.ClusterFilter(name)})
	if err != nil {
		return res, fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range nets {
		// The overlay goes once no task uses it; the last ones may still be leaving.
		err := poll.For(ctx, 30*time.Second, 500*time.Millisecond, func(ctx context.Context) (bool, error) {
			err := api.NetworkRemove(ctx, n.ID)
			return err == nil || engine.IsNotFound(err), nil
		})
		if err != nil {
			return res, fmt.Errorf("removing network %s: %w", n.Name, err)
		}
		res.Networks = append(res.Networks, n.Name)
	}
	secs, err := api.SecretList(ctx, swarm.SecretListOptions{Filters: engine.ClusterFilter(name)})
	if err != nil {
		return res, fmt.Errorf("listing swarm secrets: %w", err)
	}
	for _, sec := range secs {
		if err := api.SecretRemove(ctx, sec.ID); err != nil && !engine.IsNotFound(err) {
			return res, fmt.Errorf("removing swarm secret %s: %w", sec.Spec.Name, err)
		}
	}
	if !volumes {
		return res, nil
	}
	for _, h := range sortedKeys(s.Nodes) {
		eng := s.Nodes[h]
		vols, err := eng.API.VolumeList(ctx, volume.ListOptions{Filters: engine.ClusterFilter(name)})
		if err != nil {
			return res, fmt.Errorf("listing volumes on %s: %w", h, err)
		}
		for _, v := range vols.Volumes {
			if err := eng.API.VolumeRemove(ctx, v.Name, true); err != nil && !engine.IsNotFound(err) {
				return res, fmt.Errorf("removing volume %s on %s: %w", v.Name, h, err)
			}
			res.Volumes = append(res.Volumes, h+"/"+v.Name)
		}
	}
	res.Secrets, err = removeLocalSecrets(name)
	return res, err
}

// RemoveMembers removes members' services and waits until their containers are gone.
func (s *Swarm) RemoveMembers(ctx context.Context, topo topology.Cluster, nodes []string) error {
	for _, node := range nodes {
		name := topo.ContainerName(node)
		svc, _, err := s.Engine.API.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		if engine.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("inspecting service %s: %w", name, err)
		}
		if svc.Spec.Labels[topology.LabelCluster] != topo.Name {
			return fmt.Errorf("service %s does not belong to cluster %s; pgha will not remove it", name, topo.Name)
		}
		t, _, _ := s.currentTask(ctx, name)
		if err := s.Engine.API.ServiceRemove(ctx, svc.ID); err != nil && !engine.IsNotFound(err) {
			return fmt.Errorf("removing service %s: %w", name, err)
		}
		if eng := s.Nodes[t.Host]; eng != nil && t.Container != "" {
			err := poll.For(ctx, downTaskWait, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
				_, err := eng.API.ContainerInspect(ctx, t.Container)
				return engine.IsNotFound(err), nil
			})
			if err != nil {
				return fmt.Errorf("waiting for %s's container on %s to go: %w", name, t.Host, err)
			}
		}
	}
	return nil
}

// RemoveVolumes removes members' data volumes on whichever node holds them.
func (s *Swarm) RemoveVolumes(ctx context.Context, topo topology.Cluster, nodes []string) error {
	for _, node := range nodes {
		name := topo.VolumeName(node)
		for _, h := range sortedKeys(s.Nodes) {
			eng := s.Nodes[h]
			v, err := eng.API.VolumeInspect(ctx, name)
			if engine.IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("inspecting volume %s on %s: %w", name, h, err)
			}
			if v.Labels[topology.LabelCluster] != topo.Name {
				return fmt.Errorf("volume %s on %s does not belong to cluster %s; pgha will not remove it", name, h, topo.Name)
			}
			if err := eng.API.VolumeRemove(ctx, name, true); err != nil && !engine.IsNotFound(err) {
				return fmt.Errorf("removing volume %s on %s: %w", name, h, err)
			}
		}
	}
	return nil
}
