package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// UpResult says what Up did.
type UpResult struct {
	// Changed is false when the cluster was already complete and ready.
	Changed bool
	Images  images.ImageSet
}

// upRun is one run of Up: what its steps learn and share, in order.
type upRun struct {
	d        *Docker
	topo     topology.Cluster
	timeout  time.Duration // --timeout: the waits' budget, image builds not included
	deadline time.Time
	res      UpResult

	store    secrets.Store
	sec      secrets.Secrets
	specs    []Spec
	existing observed
	// ready: every container exists, runs and is on the network.
	ready bool
	// missing: the network or a container is still to be created.
	missing bool
	// fresh: no Patroni volume existed, so the bootstrap leader may start with etcd.
	fresh bool
	// freshEtcd: no etcd volume existed, so etcd forms a new cluster.
	freshEtcd bool
	// bootstrap: the cluster was never initialised (no initialize key).
	bootstrap bool
	primary   string
	etcd      *clientv3.Client
	access    clients.Access

	// places: on a swarm, the node of each member.
	places map[string]topology.Placement

	// Starts running in the background (see background and started): the
	// guard and the router (startBehind), a new cluster's bootstrap leader,
	// a new etcd cluster's members in turn, and the replicas once the
	// leader holds the initialize key.
	guardStarted    chan error
	routerStarted   chan error
	leaderStarted   chan error
	etcdStarted     chan error
	replicasStarted chan error
}

// Up brings a cluster to the state its topology describes: it builds missing
// images, creates what is missing, starts what is stopped, unpauses what is
// paused, joins what was cut off the network again, and waits until the
// cluster is ready. Run on a complete, running cluster it changes nothing.
// Its steps run in order, each with its own progress line.
func (d *Docker) Up(ctx context.Context, topo topology.Cluster, timeout time.Duration) (UpResult, error) {
	if d.swarm != nil {
		return d.swarm.Up(ctx, topo, timeout)
	}
	u := &upRun{d: d, topo: topo, timeout: timeout}
	defer u.close()
	err := progress.Run(ctx, d.Progress, u.steps())
	return u.res, err
}

func (u *upRun) close() {
	_ = started(&u.etcdStarted)
	_ = started(&u.guardStarted)
	_ = started(&u.routerStarted)
	_ = started(&u.leaderStarted)
	_ = started(&u.replicasStarted)
	if u.etcd != nil {
		u.etcd.Close()
	}
}

// steps is up, in order. Steps without a title show no line of their own.
func (u *upRun) steps() []progress.Named {
	return append([]progress.Named{
		{Title: "Resolving images", Run: u.resolveImages},
		{Run: u.observe},
		{Run: u.buildImages, Skip: u.isReady},
		{Title: fmt.Sprintf("Creating network %s, volumes and containers", u.topo.NetworkName()), Run: u.create, Skip: func() bool { return !u.missing }},
		{Run: u.liftNetworkFaults},
		{Run: u.rejoinCutOff},
		{Run: u.startFirst},
	}, u.readySteps()...)
}

// readySteps are up's steps from etcd on, the same on one engine and on a
// swarm: wait for etcd, turn on its logins, start the guard, bootstrap,
// start Patroni, the router, and make the stanza.
func (u *upRun) readySteps() []progress.Named {
	noGuard := func() bool { return !u.topo.Guard }
	guardTitle := "Waiting for the guard"
	if u.d.swarm != nil {
		guardTitle = "Waiting for the guards"
	}
	return []progress.Named{
		{Run: u.startWaits},
		{Title: fmt.Sprintf("Waiting for etcd (%s)", strings.Join(u.topo.ContainerNames(u.topo.EtcdNames()), ", ")), Run: u.waitEtcd},
		{Run: u.startFreshLeader, Skip: func() bool { return !u.fresh }},
		{Title: "Enabling etcd authentication", Run: u.enableEtcdAuth},
		{Run: u.startBehind},
		{Title: "Waiting for the object store", Run: u.waitObjectStore},
		{Title: "Giving pgBackRest its own S3 account", Run: u.pgBackRestS3User, Skip: func() bool { return u.res.Images.ObjectStore.Kind == topology.StoreMinIO }},
		{Run: u.checkInitialized},
		{Title: fmt.Sprintf("Bootstrapping %s as the primary", u.topo.ContainerName(u.topo.BootstrapLeader)), Run: u.bootstrapLeader, Skip: u.notBootstrap},
		// Patroni's post_bootstrap made the stanza before the leader took its
		// key (see topology.PatroniConfig); this checks it, and makes it
		// when the object store was not ready then.
		{Title: "Creating the pgBackRest stanza", Run: u.stanzaOnLeader, Skip: u.notBootstrap},
		{Title: fmt.Sprintf("Starting Patroni (%s)", strings.Join(u.topo.ContainerNames(u.topo.PatroniNames()), ", ")), Run: u.startPatroni},
		{Title: guardTitle, Run: u.waitGuard, Skip: noGuard},
		{Title: "Waiting for the router", Run: u.waitRouter, Skip: func() bool { return !u.topo.Router }},
		{Title: "Waiting for every etcd member", Run: u.waitEtcdAll},
		{Title: "Creating the pgBackRest stanza", Run: u.stanzaOnPrimary, Skip: func() bool { return u.bootstrap }},
	}
}

func (u *upRun) isReady() bool      { return u.ready }
func (u *upRun) notBootstrap() bool { return !u.bootstrap }

func (u *upRun) resolveImages(ctx context.Context) (string, error) {
	sup := &images.Supplier{Engine: u.d.Engine, Progress: u.d.Progress}
	imgs, err := sup.Resolve(ctx)
	if err != nil {
		return "", err
	}
	if kind, err := u.d.StoreKind(ctx, u.topo); err != nil {
		return "", err
	} else if kind != "" && kind != imgs.ObjectStore.Kind {
		// Keep the store the cluster was made with; its container exists already.
		imgs.ObjectStore = images.Image{Role: topology.RoleObjectStore, Kind: kind, Source: "existing container"}
	}
	if !u.topo.Router {
		imgs.Router = images.Image{}
	}
	if !u.topo.Guard {
		imgs.Guard = images.Image{}
	} else if imgs.Guard.Unavailable != "" {
		return "", fmt.Errorf("cluster %s has the guard on, but %s", u.topo.Name, imgs.Guard.Unavailable)
	}
	u.res.Images = imgs
	return "Images resolved", nil
}

// observe reads what exists, refuses what is in the way, and makes the
// cluster's secrets.
func (u *upRun) observe(ctx context.Context) (string, error) {
	for _, im := range u.res.Images.All() {
		if im.Ref != "" {
			u.d.Progress.Info(fmt.Sprintf("  %-11s %s — %s", im.Role, im.Ref, im.Source))
		}
	}
	store, err := secrets.For(u.topo.Name)
	if err != nil {
		return "", err
	}
	u.store = store
	socket := ""
	if u.topo.Guard {
		if socket, err = u.d.Engine.SocketPath(ctx); err != nil {
			return "", err
		}
	}
	specs := Plan(u.topo, u.res.Images, secrets.Secrets{}, store, socket)
	if u.existing, err = u.d.preflight(ctx, u.topo, specs); err != nil {
		return "", err
	}
	if err := u.checkSecretsMatchData(ctx, specs); err != nil {
		return "", err
	}
	// The certificate names the store as the cluster and this machine reach it.
	hosts := []string{u.res.Images.ObjectStore.Kind, topology.ObjectStoreAlias, u.topo.ContainerName(u.res.Images.ObjectStore.Kind), "localhost", "127.0.0.1"}
	if h := u.d.Engine.Endpoint.PublishHost; h != "127.0.0.1" {
		hosts = append(hosts, h)
	}
	if u.sec, err = store.Ensure(hosts); err != nil {
		return "", err
	}
	if err := store.EnsureEtcdTLS(etcdHosts(u.topo, u.d.Engine.Endpoint.PublishHost)); err != nil {
		return "", err
	}
	u.specs = Plan(u.topo, u.res.Images, u.sec, store, socket)
	if err := u.d.replaceOldGuard(ctx, u.topo, u.res.Images.Guard, u.existing); err != nil {
		return "", err
	}
	u.ready = true
	for _, s := range u.specs {
		c := u.existing[s.Name]
		u.missing = u.missing || !c.Exists()
		if !c.Running() || !c.OnNetwork(u.topo.NetworkName()) {
			u.ready = false
		}
	}
	if _, err := u.d.Engine.API.NetworkInspect(ctx, u.topo.NetworkName(), network.InspectOptions{}); engine.IsNotFound(err) {
		u.missing, u.ready = true, false
	} else if err != nil {
		return "", fmt.Errorf("inspecting network %s: %w", u.topo.NetworkName(), err)
	}
	u.res.Changed = !u.ready
	// A cluster without Patroni data is new: its bootstrap leader can start
	// together with etcd, since nothing else can have initialised it.
	if u.fresh, err = u.d.volumesNew(ctx, ByRole(u.specs, topology.RolePatroni)); err != nil {
		return "", err
	}
	if u.freshEtcd, err = u.d.volumesNew(ctx, ByRole(u.specs, topology.RoleEtcd)); err != nil {
		return "", err
	}
	ca, err := store.CertPool()
	if err != nil {
		return "", err
	}
	u.access = u.d.Access(u.topo, clients.FromSecrets(u.sec, ca, store.CAPath()))
	return "", nil
}

// checkSecretsMatchData refuses to start from existing data volumes whose
// passwords were lost with the state directory.
func (u *upRun) checkSecretsMatchData(ctx context.Context, specs []Spec) error {
	if u.store.Exists() {
		return nil
	}
	for _, s := range ByRole(specs, topology.RolePatroni) {
		if _, err := u.d.Engine.API.VolumeInspect(ctx, s.Volume); err == nil {
			return fmt.Errorf("cluster %q has data volumes (%s) but its secrets in %s are gone; remove the cluster with `pgha down -v --name %s` and create it again",
				u.topo.Name, s.Volume, u.store.Dir, u.topo.Name)
		}
	}
	return nil
}

func (u *upRun) buildImages(ctx context.Context) (string, error) {
	sup := &images.Supplier{Engine: u.d.Engine, Progress: u.d.Progress}
	if err := sup.Build(ctx, &u.res.Images); err != nil {
		return "", err
	}
	socket := ""
	for _, s := range ByRole(u.specs, topology.RoleGuard) {
		for _, m := range s.Host.Mounts {
			if m.Target == guardSocket {
				socket = m.Source // the proxy's
			}
		}
	}
	u.specs = Plan(u.topo, u.res.Images, u.sec, u.store, socket)
	return "", nil
}

// startWaits starts the waits' budget (--timeout) where the waits begin, after
// the images are built or loaded: that takes minutes on a new machine and is
// not part of it.
func (u *upRun) startWaits(context.Context) (string, error) {
	u.deadline = time.Now().Add(u.timeout)
	return "", nil
}

// create makes the network, the volumes and the containers that are missing.
func (u *upRun) create(ctx context.Context) (string, error) {
	api, topo := u.d.Engine.API, u.topo
	created := 0
	_, err := api.NetworkInspect(ctx, topo.NetworkName(), network.InspectOptions{})
	if engine.IsNotFound(err) {
		labels := topo.Labels(topology.RoleNetwork, "")
		labels[topology.LabelTopology] = topologyLabel(topo)
		if _, err := api.NetworkCreate(ctx, topo.NetworkName(), network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil {
			return "", fmt.Errorf("creating network %s: %w", topo.NetworkName(), err)
		}
		created++
	} else if err != nil {
		return "", fmt.Errorf("inspecting network %s: %w", topo.NetworkName(), err)
	}
	for _, s := range u.specs {
		if u.existing[s.Name].Exists() {
			continue
		}
		if s.Volume != "" { // the guard keeps no data
			labels := topo.Labels(topology.RoleVolume, s.Node)
			if s.Role == topology.RolePatroni && topo.DataGeneration > 0 {
				labels[topology.LabelGeneration] = strconv.Itoa(topo.DataGeneration)
			}
			if _, err := api.VolumeCreate(ctx, volume.CreateOptions{Name: s.Volume, Labels: labels}); err != nil {
				return "", fmt.Errorf("creating volume %s: %w", s.Volume, err)
			}
		}
		if _, err := api.ContainerCreate(ctx, s.Config, s.Host, networking(topo, s), nil, s.Name); err != nil {
			return "", fmt.Errorf("creating container %s: %w", s.Name, err)
		}
		created++
	}
	return fmt.Sprintf("Created network %s and %d containers", topo.NetworkName(), created), nil
}

// liftNetworkFaults stops the network-fault helpers an interrupted failover
// test left running (they hold iptables rules or a qdisc in a member's
// network namespace): a helper clears what it added when it is stopped.
func (u *upRun) liftNetworkFaults(ctx context.Context) (string, error) {
	api := u.d.Engine.API
	cs, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", topology.LabelCluster+"="+u.topo.Name), filters.Arg("label", topology.LabelRole+"="+images.RoleNetfault))})
	if err != nil {
		return "", fmt.Errorf("listing network-fault helpers: %w", err)
	}
	for _, c := range cs {
		name, node := engine.SummaryName(c), c.Labels[topology.LabelNode]
		err := progress.Step(u.d.Progress, fmt.Sprintf("Lifting the network fault left on %s", node), func() (string, error) {
			if c.State == container.StateRunning {
				timeout := 10
				if err := api.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil && !engine.IsNotFound(err) {
					return "", fmt.Errorf("stopping %s: %w", name, err)
				}
			}
			if err := api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !engine.IsNotFound(err) {
				return "", fmt.Errorf("removing %s: %w", name, err)
			}
			return fmt.Sprintf("Lifted the network fault left on %s", node), nil
		})
		if err != nil {
			return "", err
		}
	}
	return "", nil
}

// rejoinCutOff attaches every existing container that was cut off the
// cluster network (an interrupted partition test) to it again.
func (u *upRun) rejoinCutOff(ctx context.Context) (string, error) {
	for _, s := range u.specs {
		c := u.existing[s.Name]
		if !c.Exists() || c.OnNetwork(u.topo.NetworkName()) {
			continue
		}
		// A stopped container joins the network and starts later; a running
		// one has its pinned names removed once it is back.
		err := progress.Step(u.d.Progress, fmt.Sprintf("Joining %s to %s again", s.Name, u.topo.NetworkName()), func() (string, error) {
			if !c.Running() {
				return "", u.d.Engine.API.NetworkConnect(ctx, u.topo.NetworkName(), s.Name, &network.EndpointSettings{Aliases: s.Aliases})
			}
			return fmt.Sprintf("%s is on %s again", s.Name, u.topo.NetworkName()), u.d.Rejoin(ctx, u.topo, s.Node)
		})
		if err != nil {
			return "", err
		}
	}
	return "", nil
}

// start starts (or unpauses) one container, copying its files first.
func (u *upRun) start(ctx context.Context, s Spec) error {
	if sw := u.d.swarm; sw != nil {
		if s.Role == topology.RoleGuard {
			return sw.startGuards(ctx, u, s)
		}
		return sw.startService(ctx, u, s)
	}
	c, err := u.d.Engine.Inspect(ctx, u.topo.Name, s.Name)
	if err != nil {
		return err
	}
	switch c.State {
	case container.StateRunning, container.StateRestarting:
		return nil
	case container.StatePaused:
		if err := u.d.Engine.API.ContainerUnpause(ctx, s.Name); err != nil {
			return fmt.Errorf("unpausing container %s: %w", s.Name, err)
		}
		return nil
	}
	if s.Files != nil {
		files, err := s.Files()
		if err != nil {
			return fmt.Errorf("preparing files for %s: %w", s.Name, err)
		}
		dir := "/"
		if s.Host.ReadonlyRootfs {
			// Only its volume takes files: names relative to its mount.
			dir = s.Mount
			for i := range files {
				files[i].Name = strings.TrimPrefix(files[i].Name, s.Mount+"/")
			}
		}
		if err := u.d.Engine.CopyFilesTo(ctx, s.Name, dir, files); err != nil {
			return err
		}
	}
	if err := u.d.Engine.API.ContainerStart(ctx, s.Name, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting container %s: %w", s.Name, err)
	}
	return nil
}

// startAll starts containers in parallel: each start costs the engine about
// a second here.
func (u *upRun) startAll(ctx context.Context, ss []Spec) error {
	errs := make([]error, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = u.start(ctx, s)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startFirst starts etcd and the object store (the primary archives WAL to
// it from its first minute).
func (u *upRun) startFirst(ctx context.Context) (string, error) {
	first := ByRole(u.specs, topology.RoleObjectStore)
	if !u.freshEtcd {
		return "", u.startAll(ctx, append(first, ByRole(u.specs, topology.RoleEtcd)...))
	}
	// The members start in turn in the background; waitEtcd needs a quorum
	// of them only, and waitEtcdAll collects the outcome.
	u.etcdStarted = make(chan error, 1)
	go func() { u.etcdStarted <- u.startEtcdInTurn(ctx) }()
	return "", u.startAll(ctx, first)
}

// startFreshLeader starts a new cluster's bootstrap leader in the background
// as soon as etcd has a quorum, while etcd's logins are turned on: Patroni
// spends its first second starting Python. Should it ask etcd before the
// logins are on, etcd later answers it "user name is empty" and it logs in
// then (images/patroni/fix-etcd3-errors.sh); before etcd has a quorum it
// would wait 5 s ("waiting on etcd").
func (u *upRun) startFreshLeader(ctx context.Context) (string, error) {
	u.leaderStarted = background(func() error { return u.start(ctx, specByNode(u.specs, u.topo.BootstrapLeader)) })
	return "", nil
}

// waitEtcd waits for a quorum of etcd members with a leader: that is all
// Patroni needs to go on; every member's health is awaited at the end of up.
func (u *upRun) waitEtcd(ctx context.Context) (string, error) {
	return u.awaitEtcd(ctx, len(u.topo.Etcd)/2+1)
}

// waitEtcdAll waits until every etcd member is healthy.
func (u *upRun) waitEtcdAll(ctx context.Context) (string, error) {
	if err := started(&u.etcdStarted); err != nil {
		return "", err
	}
	return u.awaitEtcd(ctx, len(u.topo.Etcd))
}

func (u *upRun) awaitEtcd(ctx context.Context, want int) (string, error) {
	etcdSpecs := ByRole(u.specs, topology.RoleEtcd)
	// The members that start first are those a quorum needs (see
	// startEtcdInTurn); the others may not have started yet.
	err := u.d.waitFor(ctx, u.deadline, "etcd to be healthy", names(etcdSpecs[:want]), func(ctx context.Context) (bool, string) {
		// The client logs in when it is made, which needs a member that answers.
		if u.etcd == nil {
			etcd, err := u.access.Etcd()
			if err != nil {
				return false, err.Error()
			}
			u.etcd = etcd
		}
		var bad []string
		for _, m := range clients.EtcdStatus(ctx, u.etcd) {
			if m.Err != nil {
				bad = append(bad, m.Endpoint)
			}
		}
		return len(etcdSpecs)-len(bad) >= want, fmt.Sprintf("not yet healthy: %s", strings.Join(bad, ", "))
	})
	if want < len(etcdSpecs) {
		return fmt.Sprintf("etcd ready: a leader and at least %d of %d members healthy", want, len(etcdSpecs)), err
	}
	return fmt.Sprintf("etcd ready: %d members healthy", len(etcdSpecs)), err
}

// startBehind starts the guard and the router in the background, while
// Patroni bootstraps: neither is on the way to a primary (the guard needs
// etcd only; the router checks the nodes until they answer), and each start
// costs the engine up to a second here. Their steps at the end of up wait
// for them.
func (u *upRun) startBehind(ctx context.Context) (string, error) {
	if u.topo.Guard {
		u.guardStarted = background(func() error { return u.startAll(ctx, ByRole(u.specs, topology.RoleGuard)) })
	}
	if u.topo.Router {
		u.routerStarted = background(func() error { return u.startAll(ctx, ByRole(u.specs, topology.RoleRouter)) })
	}
	return "", nil
}

// background runs start in a goroutine; its outcome is read once from the
// channel (see started).
func background(start func() error) chan error {
	c := make(chan error, 1)
	go func() { c <- start() }()
	return c
}

// started waits for a start made by background and forgets it, so that
// close does not wait for it again.
func started(c *chan error) error {
	if *c == nil {
		return nil
	}
	err := <-*c
	*c = nil
	return err
}

func (u *upRun) waitObjectStore(ctx context.Context) (string, error) {
	s3, err := u.access.S3()
	if err != nil {
		return "", err
	}
	created := false
	bucket := u.topo.ObjectStore.Bucket
	err = u.d.waitFor(ctx, u.deadline, "the object store to answer over TLS", names(ByRole(u.specs, topology.RoleObjectStore)), func(ctx context.Context) (bool, string) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		c, err := clients.EnsureBucket(rctx, s3, bucket)
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
	return fmt.Sprintf("Object store ready over TLS: bucket %s %s", bucket, verb), err
}

// checkInitialized decides whether the cluster must be bootstrapped: a new
// cluster's leader may have bootstrapped already while etcd was awaited; it
// still goes through the bootstrap step, which makes the stanza.
func (u *upRun) checkInitialized(ctx context.Context) (string, error) {
	initialized, err := clients.KeyExists(ctx, u.etcd, u.topo.KeyPrefix()+"initialize")
	if err != nil {
		return "", err
	}
	u.bootstrap = u.fresh || !initialized
	return "", nil
}

// bootstrapLeader starts the bootstrap leader alone, so that it and no other
// node becomes the primary. Once it holds the initialize key no other node
// can bootstrap: the replicas' containers start then, while the leader runs
// initdb (the engine takes about a second per start), and clone it when it
// is up.
func (u *upRun) bootstrapLeader(ctx context.Context) (string, error) {
	leader := specByNode(u.specs, u.topo.BootstrapLeader)
	if err := started(&u.leaderStarted); err != nil {
		return "", err
	}
	if err := u.start(ctx, leader); err != nil {
		return "", err
	}
	err := u.d.waitFor(ctx, u.deadline, leader.Name+" to bootstrap", []string{leader.Name}, func(pctx context.Context) (bool, string) {
		// A restore's replicas start only once the leader is the primary:
		// should its recovery fail, Patroni drops the initialize key, and a
		// replica would then bootstrap an empty database with initdb.
		if u.replicasStarted == nil && u.topo.Restore == nil {
			if ok, _ := clients.KeyExists(pctx, u.etcd, u.topo.KeyPrefix()+"initialize"); ok {
				// The starts outlive this wait: they run on Up's context.
				u.replicasStarted = background(func() error { return u.startAll(ctx, ByRole(u.specs, topology.RolePatroni)) })
			}
		}
		st, err := u.access.Patroni(pctx, u.topo.BootstrapLeader)
		if err != nil {
			return false, "Patroni REST API not answering yet"
		}
		return st.Leading(), fmt.Sprintf("%s: %s %s", leader.Name, st.Role, st.State)
	})
	return fmt.Sprintf("%s is the primary", leader.Name), err
}

func (u *upRun) stanzaOnLeader(ctx context.Context) (string, error) {
	return u.d.ensureStanza(ctx, u.topo, u.topo.BootstrapLeader)
}

func (u *upRun) stanzaOnPrimary(ctx context.Context) (string, error) {
	return u.d.ensureStanza(ctx, u.topo, u.primary)
}

// startPatroni starts every Patroni node and waits for one primary and every
// replica streaming.
func (u *upRun) startPatroni(ctx context.Context) (string, error) {
	pgSpecs := ByRole(u.specs, topology.RolePatroni)
	if err := u.startAll(ctx, pgSpecs); err != nil {
		return "", err
	}
	nudged := time.Time{}
	err := u.d.waitFor(ctx, u.deadline, "one primary and every replica streaming", names(pgSpecs), func(ctx context.Context) (bool, string) {
		leaders, streaming, status, waiting := 0, 0, []string{}, false
		for _, n := range u.topo.Patroni {
			st, err := u.access.Patroni(ctx, n.Name)
			switch {
			case err != nil:
				status = append(status, n.Name+" not answering")
			case st.Leading():
				leaders++
				u.primary = n.Name
				status = append(status, n.Name+" primary")
			case st.Streaming():
				streaming++
				status = append(status, n.Name+" streaming")
			default:
				// A running replica that does not stream yet waits for its slot.
				waiting = waiting || (st.Role == clients.RoleReplica && st.State == "running")
				status = append(status, fmt.Sprintf("%s %s %s", n.Name, st.Role, st.State))
			}
		}
		ready := leaders == 1 && streaming == len(u.topo.Patroni)-1
		// In synchronous mode (as Patroni's dynamic configuration says now,
		// whatever the topology said at creation) the leader names a
		// synchronous standby a loop after the replicas stream; strict
		// mode takes no write before.
		if ready && len(u.topo.Patroni) > 1 {
			cfg, err := u.access.DynamicConfig(ctx)
			if err == nil && clients.Synchronous(cfg) {
				var view clients.ClusterView
				if view, err = u.access.Cluster(ctx); err == nil && len(view.SyncStandbys()) == 0 {
					err = errors.New("no synchronous standby yet")
				}
			}
			if err != nil {
				ready, waiting = false, true
				status = append(status, err.Error())
			}
		}
		if waiting && leaders == 1 && time.Since(nudged) > 3*time.Second {
			// The leader makes replicas' slots on its next HA loop, up to
			// loop_wait away; wake it now.
			nudged = time.Now()
			_ = u.access.PatchConfig(ctx, u.primary, map[string]any{"loop_wait": u.topo.LoopWait()})
		}
		return ready, strings.Join(status, ", ")
	})
	return fmt.Sprintf("Patroni ready: %s primary, %d replicas streaming", u.topo.ContainerName(u.primary), len(pgSpecs)-1), err
}

func (u *upRun) waitGuard(ctx context.Context) (string, error) {
	guardSpecs := ByRole(u.specs, topology.RoleGuard)
	if err := started(&u.guardStarted); err != nil {
		return "", err
	}
	guardName := u.topo.ContainerName(topology.GuardNode)
	err := u.d.waitFor(ctx, u.deadline, "the guard to watch the engine's events", names(guardSpecs), func(ctx context.Context) (bool, string) {
		g, err := u.d.GuardStatus(ctx, u.topo)
		if err != nil {
			return false, err.Error()
		}
		return g.Watching, "guard: " + g.Health()
	})
	return fmt.Sprintf("Guard %s watching the engine's events", guardName), err
}
