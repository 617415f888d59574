package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/topology"
)

// planRouter is the router's container: HAProxy on the cluster network with
// its three listeners published on 127.0.0.1, no data, its generated
// configuration copied in before each start (so a changed topology or a
// newer pgha gives it the current one), read-only root filesystem, no
// capabilities: it binds ports above 1024 only.
func planRouter(in planInput) []Spec {
	topo := in.topo
	if !topo.Router {
		return nil
	}
	labels := topo.Labels(topology.RoleRouter, topology.RouterNode)
	labels[topology.LabelTopology] = topologyLabel(topo)
	exposed, bindings := nat.PortSet{}, nat.PortMap{}
	for cport, hport := range map[int]int{
		topology.RouterPrimaryPort: topo.RouterPorts.Primary,
		topology.RouterReplicaPort: topo.RouterPorts.Replicas,
		topology.RouterStatsPort:   topo.RouterPorts.Stats,
	} {
		p := nat.Port(strconv.Itoa(cport) + "/tcp")
		exposed[p] = struct{}{}
		bindings[p] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(hport)}}
	}
	cfg := topo.RouterConfig()
	return []Spec{{
		Node: topology.RouterNode, Role: topology.RoleRouter, Name: topo.ContainerName(topology.RouterNode), Aliases: []string{topology.RouterNode},
		Config: &container.Config{
			Image: in.images.Router.Ref, Hostname: topology.RouterNode, Labels: labels, ExposedPorts: exposed,
			// The same command runs Debian's haproxy and the upstream image's.
			Cmd: []string{"haproxy", "-W", "-db", "-f", topology.RouterConfigFile},
		},
		Host: &container.HostConfig{
			PortBindings:  bindings,
			CapDrop:       []string{"ALL"},
			SecurityOpt:   []string{"no-new-privileges:true"},
			RestartPolicy: container.RestartPolicy{Name: restartPolicy},
			LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "max-file": "2"}},
		},
		Files: func() ([]engine.File, error) {
			return []engine.File{{Name: topology.RouterConfigFile, Data: []byte(cfg), Mode: 0o644}}, nil
		},
	}}
}

// routerSettle is how long the router's view must stay right before up
// trusts it, when up changed something: a check that was under way when a
// node came back (or went away) can still flip it within a check timeout
// plus an interval.
const routerSettle = 1500 * time.Millisecond

// waitRouter waits, once Patroni is ready, until the router (started by
// startBehind) sends its primary port to the primary Patroni names (and its
// replica port to a replica, when the cluster has replicas).
func (u *upRun) waitRouter(ctx context.Context) (string, error) {
	rs := ByRole(u.specs, topology.RoleRouter)
	if err := started(&u.routerStarted); err != nil {
		return "", err
	}
	replicas := len(u.topo.Patroni) > 1
	// A new cluster's nodes only ever came up once, each marked up by
	// its first passing check: nothing can flip back.
	settle := time.Duration(0)
	if u.res.Changed && !u.fresh {
		settle = routerSettle
	}
	var rightSince time.Time
	err := u.d.waitFor(ctx, u.deadline, "the router to reach the primary", names(rs), func(ctx context.Context) (bool, string) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		rb, err := u.access.RouterStats(rctx)
		if err != nil {
			rightSince = time.Time{}
			return false, err.Error()
		}
		right := len(rb.Primary) == 1 && (u.primary == "" || rb.Primary[0] == u.primary) && (!replicas || len(rb.Replicas) > 0)
		switch {
		case !right:
			rightSince = time.Time{}
		case rightSince.IsZero():
			// The router started in the background may have been right
			// for a while: no server changed since then.
			rightSince = time.Now().Add(-rb.Unchanged)
		}
		return right && time.Since(rightSince) >= settle, RouterHealth(u.topo, rb)
	})
	return fmt.Sprintf("Router %s ready: %s", rs[0].Name, u.routerSummary()), err
}

func (u *upRun) routerSummary() string {
	a := u.access
	return fmt.Sprintf("primary on %s, replicas on %s, stats on %s", a.Addr(u.topo.RouterPorts.Primary), a.Addr(u.topo.RouterPorts.Replicas), a.RouterStatsURL())
}

// RouterHealth says where the router sends sessions: "5000→patroni2,
// 5001→patroni1,patroni3" with the cluster's host ports.
func RouterHealth(topo topology.Cluster, rb clients.RouterBackends) string {
	list := func(ns []string) string {
		if len(ns) == 0 {
			return "none"
		}
		return strings.Join(ns, ",")
	}
	return fmt.Sprintf("%d→%s %d→%s", topo.RouterPorts.Primary, list(rb.Primary), topo.RouterPorts.Replicas, list(rb.Replicas))
}

// probeRouter fills the router's status row from its stats page: healthy when
// exactly one node is behind the primary port and, with replicas in the
// topology, at least one behind the replica port.
func probeRouter(ctx context.Context, acc clients.Access, n *NodeStatus) {
	rb, err := acc.RouterStats(ctx)
	if err != nil {
		n.Health = "stats page not answering"
		return
	}
	n.Health = RouterHealth(acc.Topo, rb)
	n.Healthy = len(rb.Primary) == 1 && (len(acc.Topo.Patroni) < 2 || len(rb.Replicas) > 0)
}
