package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// Up brings a cluster up on the swarm: the same steps as on one engine, with
// services for containers.
func (s *Swarm) Up(ctx context.Context, topo topology.Cluster, timeout time.Duration) (UpResult, error) {
	topo.Engine = topology.EngineSwarm
	u := &upRun{d: s.Docker, topo: topo, timeout: timeout}
	defer u.close()
	steps := []progress.Named{
		{Title: "Resolving images", Run: func(ctx context.Context) (string, error) { return s.resolveImages(ctx, u) }},
		{Title: "Placing the members on the swarm's nodes", Run: func(ctx context.Context) (string, error) { return s.place(ctx, u) }},
		{Title: "Loading images into the nodes", Run: func(ctx context.Context) (string, error) { return s.loadImages(ctx, u) }},
		{Run: func(ctx context.Context) (string, error) { return s.observe(ctx, u) }},
		{Title: fmt.Sprintf("Creating the overlay network %s", topo.NetworkName()), Run: func(ctx context.Context) (string, error) { return s.createNetwork(ctx, u) }},
		{Title: "Starting etcd and the object store", Run: func(ctx context.Context) (string, error) {
			return "etcd and object store services scheduled", u.startAll(ctx, append(ByRole(u.specs, topology.RoleEtcd), ByRole(u.specs, topology.RoleObjectStore)...))
		}},
	}
	steps = append(steps, u.readySteps()...)
	err := progress.Run(ctx, s.Progress, steps)
	return u.res, err
}

// imageEngine is where pgha finds and builds its images: this machine's
// engine for test hosts (then loaded into each), the manager otherwise.
func (s *Swarm) imageEngine() *engine.Engine {
	if s.Outer != nil {
		return s.Outer
	}
	return s.Engine
}

func (s *Swarm) resolveImages(ctx context.Context, u *upRun) (string, error) {
	sup := &images.Supplier{Engine: s.imageEngine(), Progress: s.Progress}
	imgs, err := sup.Resolve(ctx)
	if err != nil {
		return "", err
	}
	if !u.topo.Router {
		imgs.Router = images.Image{}
	}
	if !u.topo.Guard {
		imgs.Guard = images.Image{}
	}
	if s.Outer != nil {
		if err := sup.Build(ctx, &imgs); err != nil {
			return "", err
		}
	}
	u.res.Images = imgs
	return "Images resolved", nil
}

// place decides each member's node and checks that pgha can reach every
// node it uses.
func (s *Swarm) place(ctx context.Context, u *upRun) (string, error) {
	nodes, err := SwarmNodes(ctx, s.Engine)
	if err != nil {
		return "", err
	}
	places, err := u.topo.Place(nodes, u.res.Images.ObjectStore.Kind)
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, p := range places {
		used[p.Node] = true
	}
	for h := range used {
		if _, err := s.node(h); err != nil {
			return "", err
		}
	}
	u.places = places
	var parts []string
	for _, h := range sortedKeys(used) {
		var members []string
		for _, m := range append(u.topo.EtcdNames(), u.topo.PatroniNames()...) {
			if places[m].Node == h {
				members = append(members, m)
			}
		}
		parts = append(parts, fmt.Sprintf("%s: %s", h, strings.Join(members, ", ")))
	}
	return fmt.Sprintf("Placed on %d nodes (%s)", len(used), strings.Join(parts, "; ")), nil
}

// loadImages puts the images into every node that lacks them (test hosts),
// or says which node lacks which image (a real swarm: nothing is pulled here).
func (s *Swarm) loadImages(ctx context.Context, u *upRun) (string, error) {
	var refs []string
	for _, im := range u.res.Images.All() {
		if im.Ref != "" {
			refs = append(refs, im.Ref)
		}
	}
	if s.Load != nil {
		if err := s.Load(ctx, refs); err != nil {
			return "", err
		}
		return fmt.Sprintf("Every node has pgha's %d images", len(refs)), nil
	}
	var missing []string
	for _, h := range sortedKeys(s.Nodes) {
		for _, ref := range refs {
			if _, err := s.Nodes[h].API.ImageInspect(ctx, ref); err != nil {
				missing = append(missing, h+": "+ref)
			}
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("images missing on swarm nodes (nothing can be pulled here; load them, e.g. docker save IMAGE | docker --context NODE load):\n  - %s", strings.Join(missing, "\n  - "))
	}
	return "Every node has pgha's images", nil
}

// observe makes the cluster's secrets and specs and reads which services exist.
func (s *Swarm) observe(ctx context.Context, u *upRun) (string, error) {
	for _, im := range u.res.Images.All() {
		if im.Ref != "" {
			s.Progress.Info(fmt.Sprintf("  %-11s %s — %s", im.Role, im.Ref, im.Source))
		}
	}
	store, err := secrets.For(u.topo.Name)
	if err != nil {
		return "", err
	}
	u.store = store
	hosts := []string{u.res.Images.ObjectStore.Kind, topology.ObjectStoreAlias, u.topo.ContainerName(u.res.Images.ObjectStore.Kind), "localhost", "127.0.0.1"}
	// On real machines the members' ports are at their nodes' addresses:
	// the certificates name them.
	nodeAddrs := []string{}
	if s.Outer == nil {
		if nodes, err := s.Engine.API.NodeList(ctx, swarm.NodeListOptions{}); err == nil {
			for _, n := range nodes {
				if n.Status.Addr != "" {
					nodeAddrs = append(nodeAddrs, n.Status.Addr)
				}
			}
		}
	}
	if u.sec, err = store.Ensure(append(hosts, nodeAddrs...)); err != nil {
		return "", err
	}
	if err := store.EnsureEtcdTLS(append(etcdHosts(u.topo, ""), nodeAddrs...)); err != nil {
		return "", err
	}
	u.specs = Plan(u.topo, u.res.Images, u.sec, store, s.GuardSocket)
	existing := 0
	u.ready, u.fresh, u.freshEtcd = true, true, true
	for _, sp := range u.specs {
		if sp.Role == topology.RoleGuard {
			continue
		}
		t, ok, err := s.currentTask(ctx, sp.Name)
		if err != nil {
			return "", err
		}
		if ok {
			existing++
			if sp.Role == topology.RolePatroni {
				u.fresh = false
			}
			if sp.Role == topology.RoleEtcd {
				u.freshEtcd = false
			}
		}
		if !ok || t.State != swarm.TaskStateRunning {
			u.ready = false
		}
	}
	// Data kept by `down` without -v: the volumes on the members' nodes.
	for _, sp := range u.specs {
		if sp.Volume == "" || (sp.Role != topology.RolePatroni && sp.Role != topology.RoleEtcd) {
			continue
		}
		eng, err := s.node(u.places[sp.Node].Node)
		if err != nil {
			return "", err
		}
		if _, err := eng.API.VolumeInspect(ctx, sp.Volume); err == nil {
			if sp.Role == topology.RolePatroni {
				u.fresh = false
			} else {
				u.freshEtcd = false
			}
		}
	}
	if u.fresh && !u.freshEtcd {
		// etcd remembers a cluster whose Patroni data is gone: the data decides.
		u.fresh = false
	}
	u.res.Changed = !u.ready
	ca, err := store.CertPool()
	if err != nil {
		return "", err
	}
	u.access = s.Access(u.topo, clients.FromSecrets(u.sec, ca, store.CAPath()))
	return "", nil
}

// createNetwork makes the cluster's attachable overlay network.
func (s *Swarm) createNetwork(ctx context.Context, u *upRun) (string, error) {
	topo := u.topo
	_, err := s.Engine.API.NetworkInspect(ctx, topo.NetworkName(), network.InspectOptions{Scope: "swarm"})
	if err == nil {
		return fmt.Sprintf("Network %s exists", topo.NetworkName()), nil
	}
	if !engine.IsNotFound(err) {
		return "", fmt.Errorf("inspecting network %s: %w", topo.NetworkName(), err)
	}
	labels := topo.Labels(topology.RoleNetwork, "")
	labels[topology.LabelTopology] = topologyLabel(topo)
	if _, err := s.Engine.API.NetworkCreate(ctx, topo.NetworkName(), network.CreateOptions{Driver: "overlay", Attachable: true, Scope: "swarm", Labels: labels}); err != nil {
		return "", fmt.Errorf("creating the overlay network %s: %w", topo.NetworkName(), err)
	}
	return fmt.Sprintf("Created the attachable overlay network %s", topo.NetworkName()), nil
}

// startService makes a member's service, or a new task of it when its task
// has ended (a kill, a stopped host): a service restarts nothing by itself,
// so that a failover test is never undone behind pgha's back.
func (s *Swarm) startService(ctx context.Context, u *upRun, sp Spec) error {
	err := s.restartTask(ctx, sp.Name)
	if err == nil || !engine.IsNotFound(err) {
		return err
	}
	spec, err := s.serviceSpec(ctx, u, sp)
	if err != nil {
		return err
	}
	if _, err := s.Engine.API.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}); err != nil {
		return fmt.Errorf("creating service %s: %w", sp.Name, err)
	}
	return nil
}

// restartTask gives a service a new task when its task has ended (the
// service's own spec again, forced); a running task is left alone. The
// engine's NotFound when the service does not exist.
func (s *Swarm) restartTask(ctx context.Context, service string) error {
	svc, _, err := s.Engine.API.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		if engine.IsNotFound(err) {
			return err
		}
		return fmt.Errorf("inspecting service %s: %w", service, err)
	}
	t, ok, err := s.currentTask(ctx, service)
	if err != nil {
		return err
	}
	if ok && !taskEnded(t.State) {
		return nil
	}
	spec := svc.Spec
	spec.TaskTemplate.ForceUpdate++
	if _, err := s.Engine.API.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		return fmt.Errorf("starting a new task of service %s: %w", service, err)
	}
	// Until the orchestrator makes the new task, the ended one is the
	// newest: waits would take it for the member's death.
	err = poll.For(ctx, newTaskWait, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		n, ok, err := s.currentTask(ctx, service)
		return err == nil && ok && n.ID != t.ID, err
	})
	if err != nil {
		return fmt.Errorf("waiting for a new task of service %s: %w", service, err)
	}
	return nil
}

// newTaskWait bounds the wait for the orchestrator to make a service's new task.
const newTaskWait = 30 * time.Second

// StartMember starts a member whose task has ended (a kill, a lost host):
// a new task of its service, on its node, with its volume.
func (s *Swarm) StartMember(ctx context.Context, topo topology.Cluster, node string) error {
	return s.restartTask(ctx, topo.ContainerName(node))
}

// taskEnded says whether a task will not run again.
func taskEnded(st swarm.TaskState) bool {
	switch st {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		return true
	}
	return false
}

// serviceSpec is a member's container spec as a swarm service: one replica
// pinned to its node, no restarts, its ports published in host mode on that
// node, names resolved to the task (dnsrr: the kernel here has no IPVS for
// virtual IPs), its files as Swarm secrets.
func (s *Swarm) serviceSpec(ctx context.Context, u *upRun, sp Spec) (swarm.ServiceSpec, error) {
	topo := u.topo
	place, ok := u.places[sp.Node]
	if !ok {
		return swarm.ServiceSpec{}, fmt.Errorf("%s has no placement", sp.Node)
	}
	refs, err := s.ensureSecrets(ctx, topo, sp)
	if err != nil {
		return swarm.ServiceSpec{}, err
	}
	return serviceSpecOf(topo, sp, place, refs), nil
}

// serviceSpecOf is the service of a member's container spec, placed and
// with its secrets' references.
func serviceSpecOf(topo topology.Cluster, sp Spec, place topology.Placement, refs []*swarm.SecretReference) swarm.ServiceSpec {
	cs := &swarm.ContainerSpec{
		Image: sp.Config.Image, Hostname: sp.Config.Hostname, Labels: sp.Config.Labels, Env: sp.Config.Env,
		Command: sp.Config.Entrypoint, Args: sp.Config.Cmd, User: sp.Config.User, Secrets: refs,
	}
	if sp.Config.StopTimeout != nil {
		grace := time.Duration(*sp.Config.StopTimeout) * time.Second
		cs.StopGracePeriod = &grace
	}
	if sp.Host != nil {
		cs.ReadOnly = sp.Host.ReadonlyRootfs
		cs.CapabilityDrop = sp.Host.CapDrop
		for _, m := range sp.Host.Mounts {
			if m.Type == mount.TypeVolume {
				m.VolumeOptions = &mount.VolumeOptions{Labels: topo.Labels(topology.RoleVolume, sp.Node)}
				if sp.Role == topology.RolePatroni && topo.DataGeneration > 0 {
					m.VolumeOptions.Labels[topology.LabelGeneration] = strconv.Itoa(topo.DataGeneration)
				}
			}
			cs.Mounts = append(cs.Mounts, m)
		}
		if sp.Host.ShmSize > 0 {
			cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: "/dev/shm", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: sp.Host.ShmSize}})
		}
	}
	var ports []swarm.PortConfig
	if sp.Host != nil {
		for p, bs := range sp.Host.PortBindings {
			for _, b := range bs {
				hp, _ := strconv.Atoi(b.HostPort)
				ports = append(ports, swarm.PortConfig{Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(p.Int()), PublishedPort: uint32(hp), PublishMode: swarm.PortConfigPublishModeHost})
			}
		}
	}
	one := uint64(1)
	labels := map[string]string{}
	for k, v := range sp.Config.Labels {
		labels[k] = v
	}
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: sp.Name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
			Placement:     &swarm.Placement{Constraints: []string{place.Constraint}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: topo.NetworkName(), Aliases: sp.Aliases}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: ports},
	}
}

// ensureSecrets makes a Swarm secret of each of a member's files (named by
// the member, the file and a hash of its content, so a changed file is a new
// secret) and returns the references that put them at their paths.
func (s *Swarm) ensureSecrets(ctx context.Context, topo topology.Cluster, sp Spec) ([]*swarm.SecretReference, error) {
	if sp.Files == nil {
		return nil, nil
	}
	files, err := sp.Files()
	if err != nil {
		return nil, fmt.Errorf("preparing files for %s: %w", sp.Name, err)
	}
	var refs []*swarm.SecretReference
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		name := fmt.Sprintf("%s-%s-%s", sp.Name, strings.ReplaceAll(path.Base(f.Name), ".", "-"), hex.EncodeToString(sum[:])[:12])
		id := ""
		existing, _, err := s.Engine.API.SecretInspectWithRaw(ctx, name)
		switch {
		case err == nil:
			id = existing.ID
		case engine.IsNotFound(err):
			labels := topo.Labels(topology.RoleSecret, sp.Node)
			resp, err := s.Engine.API.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: name, Labels: labels}, Data: f.Data})
			if err != nil {
				return nil, fmt.Errorf("creating the swarm secret %s: %w", name, err)
			}
			id = resp.ID
		default:
			return nil, fmt.Errorf("inspecting the swarm secret %s: %w", name, err)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		refs = append(refs, &swarm.SecretReference{SecretID: id, SecretName: name,
			File: &swarm.SecretReferenceFileTarget{Name: f.Name, UID: strconv.Itoa(f.UID), GID: strconv.Itoa(f.GID), Mode: os.FileMode(mode)}})
	}
	return refs, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
