// Package hosts makes a swarm of Docker engines that run in containers on one
// Docker engine — kind's "nodes are containers", for Docker Swarm — so that
// pgha's multi-host mode can be tried and tested on one machine. It is a test
// harness, not a production mode.
//
// Each host is a container (named <prefix>-h1, <prefix>-h2, …, with host names
// h1, h2, … so that node.hostname constraints are predictable) that runs
// Debian's dockerd with fuse-overlayfs storage on a labelled volume. The
// machine talks to each inner engine over a unix socket in a directory under
// the caller's state directory, never over TCP to a container address. The
// hosts share one labelled bridge network, on which the first three form the
// swarm's managers (more hosts join as workers). Every port a host publishes
// is bound to 127.0.0.1 with the same number outside and inside, so an inner
// service published in host mode on port P of that node answers at
// 127.0.0.1:P on the machine. A host's ports are fixed when its container is
// created: the caller plans them from the topology.
//
// The engine in a container needs, on a Docker 20.10 engine that refuses
// --privileged ("unable to apply caps: operation not permitted"): every
// capability except SYS_RESOURCE, seccomp, AppArmor and the masked /proc paths
// unconfined, /dev/fuse, a tmpfs at /run and the machine's cgroup hierarchy.
// See DESIGN.md §8 for what was measured.
//
// Everything carries the labels io.pgha.hosts=<prefix> and io.pgha.role
// (hosts-engine, hosts-network, hosts-data); Delete removes only what carries
// them, and treats what is already gone as removed.
//
// What works inside these engines on this kind of machine (a kernel without
// IPVS, so /proc/sys/net/ipv4/vs does not exist), measured in NOTES.md:
//   - services published in host mode (mode=host): a task on h3 publishing P
//     answers at 127.0.0.1:P when host 3 was made with port P;
//   - overlay networks (attachable too) between containers on different hosts;
//   - service names with endpoint mode dnsrr, and tasks.<service> names.
//
// What does not: the ingress routing mesh (publish mode ingress, the default)
// and a service's virtual IP (endpoint mode vip, the default) — both are IPVS;
// connecting to a VIP fails with "No route to host". Deploy with
// EndpointSpec{Mode: swarm.ResolutionModeDNSRR} and PublishMode host.
//
// How the CLI will call it (`pgha hosts create` / `pgha hosts delete`), with
// the one Docker client of the process:
//
//	// Ports from the topology, round-robin: host i runs etcd member i and
//	// Patroni node i; host 1 also the object store.
//	count := 3
//	ports := map[int][]int{1: {topo.ObjectStore.APIPort}}
//	for i, e := range topo.Etcd {
//		ports[i%count+1] = append(ports[i%count+1], e.ClientPort)
//	}
//	for i, n := range topo.Patroni {
//		ports[i%count+1] = append(ports[i%count+1], n.PGPort, n.RESTPort)
//	}
//	sw, err := hosts.Create(ctx, docker, hosts.Options{
//		Prefix:   name,                             // containers <name>-h1 …
//		Count:    count,
//		Ports:    ports,                            // 127.0.0.1:P -> P on that host
//		StateDir: filepath.Join(stateDir, "hosts"), // sockets <dir>/<name>/h1/docker.sock
//		Images:   []string{set.Patroni.Ref, set.Etcd.Ref, set.ObjectStore.Ref},
//	}, func(line string) { progress.Info(line) })
//	if err != nil {
//		return err // says which host failed and what to do
//	}
//	for _, h := range sw.Hosts {
//		fmt.Printf("%s\t%s\t%s\t%v\n", h.Name, h.Container, h.Socket, h.Ports)
//	}
//	manager, err := sw.Hosts[0].Client() // deploy the services through a manager
//	defer manager.Close()
//
//	// pgha hosts delete: everything labelled io.pgha.hosts=<name>.
//	err = hosts.Delete(ctx, docker, name)
//
//	// pgha hosts list: hosts.List(ctx, docker), then hosts.Inspect for each.
//
// The ports: PortPlan(topo, count, storeKind) places the cluster's members on
// h1…hN as the swarm deployment does (topology.Cluster.Place) and gives each
// host the ports of what it runs (topology.Cluster.PortsByNode); `pgha hosts
// create` publishes that plan by default (the seed topology, or -f, --name,
// --port-offset), AddPorts adds --ports.
//
// Host-level faults (host-down, host-partition in pkg/faults) go through a
// Controller on the outer engine:
//
//	ctl := &hosts.Controller{Outer: docker, Prefix: name, Deadline: d}
//	err := ctl.EnsureHelper(ctx, progress)     // the network-fault helper image, once
//	target.Hosts = ctl.Faults()                // faults.HostFaults
//	host, err := ctl.HostOf(ctx, nil, service) // "h2": the node of the service's running task
//	err = ctl.Kill(ctx, "h2")                  // SIGKILL of the host's container
//	err = ctl.Start(ctx, "h2")                 // started, engine answers, swarm lists it ready
//	err = ctl.Cut(ctx, "h3")                   // off the other hosts; its ports still answer here
//	err = ctl.Join(ctx, "h3")                  // the cut lifted
package hosts
