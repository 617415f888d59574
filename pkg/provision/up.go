package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/pgha/pgha/pkg/verify"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// UpResult says what Up did.
type UpResult struct {
	// Changed is false when the cluster was already complete and ready.
	Changed bool
	Images  ImageSet
}

// Up brings a cluster to the state its topology describes: it builds missing
// images, creates what is missing, starts what is stopped and waits until the
// cluster is ready. Run on a complete, running cluster it changes nothing.
func (p *Provisioner) Up(ctx context.Context, topo topology.Cluster, timeout time.Duration) (UpResult, error) {
	var res UpResult
	store, err := secrets.For(topo.Name)
	if err != nil {
		return res, err
	}

	p.Progress.Start("Resolving images")
	start := time.Now()
	imgs, err := p.ResolveImages(ctx)
	if err != nil {
		p.Progress.End(false, "")
		return res, err
	}
	if kind, err := p.storeKindOf(ctx, topo); err != nil {
		p.Progress.End(false, "")
		return res, err
	} else if kind != "" && kind != imgs.ObjectStore.Kind {
		// Keep the store the cluster was made with; its container exists already.
		imgs.ObjectStore = Image{Role: topology.RoleObjectStore, Kind: kind, Source: "existing container"}
	}
	if !topo.Guard {
		imgs.Guard = Image{}
	} else if imgs.Guard.Unavailable != "" {
		p.Progress.End(false, "")
		return res, fmt.Errorf("cluster %s has the guard on, but %s", topo.Name, imgs.Guard.Unavailable)
	}
	res.Images = imgs
	p.Progress.End(true, fmt.Sprintf("Images resolved (%s)", since(start)))
	for _, im := range imgs.all() {
		if im.Ref != "" {
			p.Progress.Info(fmt.Sprintf("  %-11s %s — %s", im.Role, im.Ref, im.Source))
		}
	}

	specs := clusterSpecs(topo, imgs, secrets.Secrets{}, store)
	existing, err := p.preflight(ctx, topo, specs)
	if err != nil {
		return res, err
	}
	if err := p.checkSecretsMatchData(ctx, topo, specs, store); err != nil {
		return res, err
	}

	hosts := []string{imgs.ObjectStore.Kind, topology.ObjectStoreAlias, topo.ContainerName(imgs.ObjectStore.Kind), "localhost", "127.0.0.1"}
	sec, err := store.Ensure(hosts)
	if err != nil {
		return res, err
	}
	specs = clusterSpecs(topo, imgs, sec, store)
	if err := p.replaceOldGuard(ctx, topo, imgs.Guard, existing); err != nil {
		return res, err
	}

	allRunning := true
	for _, s := range specs {
		if !existing[s.name].Running() {
			allRunning = false
		}
	}
	res.Changed = !allRunning
	// A cluster without Patroni data is new: its bootstrap leader can start
	// together with etcd, since nothing else can have initialised it.
	fresh := true
	for _, s := range byRole(specs, topology.RolePatroni) {
		if _, err := p.Docker.VolumeInspect(ctx, s.volume); err == nil {
			fresh = false
		}
	}
	if !allRunning {
		if err := p.BuildImages(ctx, &res.Images); err != nil {
			return res, err
		}
		specs = clusterSpecs(topo, res.Images, sec, store)
		if err := p.create(ctx, topo, specs, existing); err != nil {
			return res, err
		}
	}
	if err := p.startAndWait(ctx, topo, specs, fresh, sec, store, time.Now().Add(timeout)); err != nil {
		return res, err
	}
	return res, nil
}

// checkSecretsMatchData refuses to start from existing data volumes whose
// passwords were lost with the state directory.
func (p *Provisioner) checkSecretsMatchData(ctx context.Context, topo topology.Cluster, specs []spec, store secrets.Store) error {
	if store.Exists() {
		return nil
	}
	for _, s := range specs {
		if s.role != topology.RolePatroni {
			continue
		}
		if _, err := p.Docker.VolumeInspect(ctx, s.volume); err == nil {
			return fmt.Errorf("cluster %q has data volumes (%s) but its secrets in %s are gone; remove the cluster with `pgha down -v --name %s` and create it again",
				topo.Name, s.volume, store.Dir, topo.Name)
		}
	}
	return nil
}

// create makes the network, the volumes and the containers that are missing.
func (p *Provisioner) create(ctx context.Context, topo topology.Cluster, specs []spec, existing map[string]Container) error {
	p.Progress.Start(fmt.Sprintf("Creating network %s, volumes and containers", topo.NetworkName()))
	start := time.Now()
	created := 0
	_, err := p.Docker.NetworkInspect(ctx, topo.NetworkName(), network.InspectOptions{})
	if client.IsErrNotFound(err) {
		labels := topo.Labels(topology.RoleNetwork, "")
		labels[topology.LabelTopology] = topologyLabel(topo)
		if _, err := p.Docker.NetworkCreate(ctx, topo.NetworkName(), network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil {
			p.Progress.End(false, "")
			return fmt.Errorf("creating network %s: %w", topo.NetworkName(), err)
		}
		created++
	} else if err != nil {
		p.Progress.End(false, "")
		return fmt.Errorf("inspecting network %s: %w", topo.NetworkName(), err)
	}
	for _, s := range specs {
		if existing[s.name].State != StateMissing {
			continue
		}
		if s.volume != "" { // the guard keeps no data
			if _, err := p.Docker.VolumeCreate(ctx, volume.CreateOptions{Name: s.volume, Labels: topo.Labels(topology.RoleVolume, s.node)}); err != nil {
				p.Progress.End(false, "")
				return fmt.Errorf("creating volume %s: %w", s.volume, err)
			}
		}
		if _, err := p.Docker.ContainerCreate(ctx, s.config, s.host, networking(topo, s.role, s.node), nil, s.name); err != nil {
			p.Progress.End(false, "")
			return fmt.Errorf("creating container %s: %w", s.name, err)
		}
		created++
	}
	p.Progress.End(true, fmt.Sprintf("Created network %s and %d containers (%s)", topo.NetworkName(), created, since(start)))
	return nil
}

// startContainer starts (or unpauses) one container, copying its files first.
func (p *Provisioner) startContainer(ctx context.Context, s spec) error {
	c, err := p.inspect(ctx, "", s.name)
	if err != nil {
		return err
	}
	switch c.State {
	case "running", "restarting":
		return nil
	case "paused":
		return p.Docker.ContainerUnpause(ctx, s.name)
	}
	if s.files != nil {
		archive, err := s.files()
		if err != nil {
			return fmt.Errorf("preparing files for %s: %w", s.name, err)
		}
		if err := p.Docker.CopyToContainer(ctx, s.name, "/", bytes.NewReader(archive), container.CopyToContainerOptions{}); err != nil {
			return fmt.Errorf("copying files into %s: %w", s.name, err)
		}
	}
	if err := p.Docker.ContainerStart(ctx, s.name, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting container %s: %w", s.name, err)
	}
	return nil
}

func byRole(specs []spec, role string) []spec {
	var out []spec
	for _, s := range specs {
		if s.role == role {
			out = append(out, s)
		}
	}
	return out
}

func names(specs []spec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.name)
	}
	return out
}

// startAndWait starts the cluster in order and waits for each part to be ready:
// etcd healthy, then the Patroni bootstrap leader alone when the cluster was
// never initialised (so that it, and no other node, becomes the primary), then
// every replica streaming, and the object store answering with its bucket.
func (p *Provisioner) startAndWait(ctx context.Context, topo topology.Cluster, specs []spec, fresh bool,
	sec secrets.Secrets, store secrets.Store, deadline time.Time) error {
	etcdSpecs, storeSpecs, pgSpecs := byRole(specs, topology.RoleEtcd), byRole(specs, topology.RoleObjectStore), byRole(specs, topology.RolePatroni)

	step := func(title string, fn func() (string, error)) error {
		p.Progress.Start(title)
		start := time.Now()
		summary, err := fn()
		if err != nil {
			p.Progress.End(false, "")
			return err
		}
		p.Progress.End(true, fmt.Sprintf("%s (%s)", summary, since(start)))
		return nil
	}
	// Containers start in parallel: each start costs the engine about a second.
	startAll := func(ss []spec) error {
		errs := make([]error, len(ss))
		var wg sync.WaitGroup
		for i, s := range ss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = p.startContainer(ctx, s)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}

	// The object store starts with etcd: the primary archives WAL to it from
	// its first minute. A new cluster's bootstrap leader starts at once too.
	leader := specByNode(pgSpecs, topo.BootstrapLeader)
	first := append(append([]spec{}, etcdSpecs...), storeSpecs...)
	if fresh {
		first = append(first, leader)
	}
	if err := startAll(first); err != nil {
		return err
	}
	etcd, err := verify.NewEtcdClient(topo.EtcdEndpointsHost())
	if err != nil {
		return err
	}
	defer etcd.Close()
	err = step(fmt.Sprintf("Waiting for etcd (%s)", strings.Join(names(etcdSpecs), ", ")), func() (string, error) {
		err := p.waitFor(ctx, deadline, "etcd to be healthy", names(etcdSpecs), func(ctx context.Context) (bool, string) {
			var bad []string
			for _, m := range verify.EtcdStatus(ctx, etcd) {
				if m.Err != nil {
					bad = append(bad, m.Endpoint)
				}
			}
			return len(bad) == 0, fmt.Sprintf("not yet healthy: %s", strings.Join(bad, ", "))
		})
		return fmt.Sprintf("etcd ready: %d members healthy", len(etcdSpecs)), err
	})
	if err != nil {
		return err
	}
	// The guard needs etcd only; it starts while Patroni does.
	guardSpecs := byRole(specs, topology.RoleGuard)
	guardStarted := make(chan error, 1)
	go func() { guardStarted <- startAll(guardSpecs) }()

	err = step("Waiting for the object store", func() (string, error) {
		ca, err := store.CertPool()
		if err != nil {
			return "", err
		}
		s3, err := verify.NewS3Client(topo.ObjectStore.APIPort, sec.S3AccessKey, sec.S3SecretKey, ca)
		if err != nil {
			return "", err
		}
		created := false
		err = p.waitFor(ctx, deadline, "the object store to answer over TLS", names(storeSpecs), func(ctx context.Context) (bool, string) {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			c, err := verify.EnsureBucket(rctx, s3, topo.ObjectStore.Bucket)
			if err != nil {
				return false, err.Error()
			}
			created = c
			return true, ""
		})
		verb := "exists"
		if created {
			verb = "created"
		}
		return fmt.Sprintf("Object store ready over TLS: bucket %s %s", topo.ObjectStore.Bucket, verb), err
	})
	if err != nil {
		return err
	}

	initialized, err := keyExists(ctx, etcd, topo.KeyPrefix()+"initialize")
	if err != nil {
		return err
	}
	// A new cluster's leader may have bootstrapped already while etcd was
	// awaited; it still goes through this step, which makes the stanza.
	bootstrap := fresh || !initialized
	if bootstrap {
		node, _ := topo.PatroniNode(topo.BootstrapLeader)
		// Once the leader holds the initialize key no other node can
		// bootstrap: the replicas' containers start then, while the leader
		// runs initdb (the engine takes about a second per start), and
		// clone it when it is up.
		replicasStarted := make(chan error, 1)
		startingReplicas := false
		defer func() {
			if startingReplicas {
				<-replicasStarted
			}
		}()
		err = step(fmt.Sprintf("Bootstrapping %s as the primary", leader.name), func() (string, error) {
			if err := p.startContainer(ctx, leader); err != nil {
				return "", err
			}
			err := p.waitFor(ctx, deadline, leader.name+" to bootstrap", []string{leader.name}, func(ctx context.Context) (bool, string) {
				if !startingReplicas {
					if ok, _ := keyExists(ctx, etcd, topo.KeyPrefix()+"initialize"); ok {
						startingReplicas = true
						go func() { replicasStarted <- startAll(pgSpecs) }()
					}
				}
				st, err := verify.GetPatroni(ctx, node.RESTPort)
				if err != nil {
					return false, "Patroni REST API not answering yet"
				}
				return st.Leading(), fmt.Sprintf("%s: %s %s", leader.name, st.Role, st.State)
			})
			return fmt.Sprintf("%s is the primary", leader.name), err
		})
		if err != nil {
			return err
		}
		// Patroni's post_bootstrap made the stanza before the leader took
		// its key (see topology.PatroniConfig); this checks it, and makes it
		// when the object store was not ready then.
		err = step("Creating the pgBackRest stanza", func() (string, error) {
			return p.ensureStanza(ctx, topo, topo.BootstrapLeader)
		})
		if err != nil {
			return err
		}
	}
	primary := ""
	err = step(fmt.Sprintf("Starting Patroni (%s)", strings.Join(names(pgSpecs), ", ")), func() (string, error) {
		if err := startAll(pgSpecs); err != nil {
			return "", err
		}
		primaryName, primaryPort, waiting, nudged := "", 0, false, time.Time{}
		err := p.waitFor(ctx, deadline, "one primary and every replica streaming", names(pgSpecs), func(ctx context.Context) (bool, string) {
			leaders, streaming, status := 0, 0, []string{}
			waiting = false
			for _, n := range topo.Patroni {
				st, err := verify.GetPatroni(ctx, n.RESTPort)
				switch {
				case err != nil:
					status = append(status, n.Name+" not answering")
				case st.Leading():
					leaders++
					primary, primaryName, primaryPort = n.Name, topo.ContainerName(n.Name), n.RESTPort
					status = append(status, n.Name+" primary")
				case st.Streaming():
					streaming++
					status = append(status, n.Name+" streaming")
				default:
					// A running replica that does not stream yet waits for its slot.
					waiting = waiting || (st.Role == verify.RoleReplica && st.State == "running")
					status = append(status, fmt.Sprintf("%s %s %s", n.Name, st.Role, st.State))
				}
			}
			if waiting && leaders == 1 && time.Since(nudged) > 3*time.Second {
				// The leader makes replicas' slots on its next HA loop, up to
				// loop_wait away; wake it now.
				nudged = time.Now()
				_ = verify.PatchConfig(ctx, primaryPort, verify.RESTAuth{User: topology.RESTUser, Password: sec.RESTPassword},
					map[string]any{"loop_wait": topo.LoopWait()})
			}
			return leaders == 1 && streaming == len(topo.Patroni)-1, strings.Join(status, ", ")
		})
		return fmt.Sprintf("Patroni ready: %s primary, %d replicas streaming", primaryName, len(pgSpecs)-1), err
	})
	if err != nil {
		return err
	}

	if len(guardSpecs) > 0 {
		err = step("Waiting for the guard", func() (string, error) {
			if err := <-guardStarted; err != nil {
				return "", err
			}
			err := p.waitFor(ctx, deadline, "the guard to watch the engine's events", names(guardSpecs), func(ctx context.Context) (bool, string) {
				g, err := GuardStatus(ctx, p.Docker, topo)
				if err != nil {
					return false, err.Error()
				}
				return g.Watching, "guard: " + g.Health()
			})
			return fmt.Sprintf("Guard %s watching the engine's events", guardSpecs[0].name), err
		})
		if err != nil {
			return err
		}
	}

	if bootstrap {
		return nil // the stanza was made during the bootstrap
	}
	return step("Creating the pgBackRest stanza", func() (string, error) {
		return p.ensureStanza(ctx, topo, primary)
	})
}

func specByNode(specs []spec, node string) spec {
	for _, s := range specs {
		if s.node == node {
			return s
		}
	}
	return spec{}
}

// keyExists says whether an etcd key exists.
func keyExists(ctx context.Context, etcd *clientv3.Client, key string) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := etcd.Get(cctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("reading %s from etcd: %w", key, err)
	}
	return resp.Count > 0, nil
}
