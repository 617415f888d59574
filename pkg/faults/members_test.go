package faults

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/engine/enginetest"
	"github.com/pgha/pgha/pkg/topology"
)

// wholeCluster is a fake engine with every container of a 3 etcd + 3
// Patroni cluster, its object store and guard, each on the cluster network.
func wholeCluster(t *testing.T) (Target, *enginetest.Engine) {
	t.Helper()
	e := enginetest.New()
	topo, _ := topology.Generate("lab", 3, 3)
	ip := 2
	add := func(role, node string) {
		e.AddContainer(enginetest.Container{Name: topo.ContainerName(node), Labels: topo.Labels(role, node),
			Networks: map[string]string{topo.NetworkName(): "10.9.0." + string(rune('0'+ip))}})
		ip++
	}
	for _, n := range topo.EtcdNames() {
		add(topology.RoleEtcd, n)
	}
	for _, n := range topo.PatroniNames() {
		add(topology.RolePatroni, n)
	}
	add(topology.RoleObjectStore, topology.StoreVersityGW)
	add(topology.RoleGuard, topology.GuardNode)
	return Target{Backend: &backend{eng: engine.New(e), fail: map[string]error{}}, Topo: topo}, e
}

func TestRegistryHasEveryFault(t *testing.T) {
	want := []string{"stop", "kill", "pause", "partition", "dcs-partition", "etcd-quorum", "etcd-leader", "replica-kill", "power-loss", "lossy-network", "store-down", "host-down", "host-partition"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v", got)
	}
	for _, f := range All() {
		p := f.Promises()
		if p.On == "" || p.Failover == "" {
			t.Errorf("%s: promises say nothing of its member or the failover: %+v", f.Name(), p)
		}
		if !strings.Contains(Help(), f.Name()+" ") || f.Help() == "" {
			t.Errorf("help lacks %s", f.Name())
		}
		if p.Hold > 0 && !p.Holds {
			t.Errorf("%s has a hold but does not hold", f.Name())
		}
	}
	if p := (DCSPartition{}).Promises(); p.On != OnPrimary || p.Failover != FailoverExpected || !p.Helper || p.CutsPorts {
		t.Errorf("dcs-partition: clients still reach the node, a failover must follow: %+v", p)
	}
	if p := (StoreDown{}).Promises(); !p.ArchivesWAL || p.On != OnStore || p.Failover != NoFailover {
		t.Errorf("store-down: %+v", p)
	}
	if !OnReplica.OnPatroni() || OnEtcdLeader.OnPatroni() || OnAll.OnPatroni() {
		t.Error("OnPatroni")
	}
}

func TestMajorityTakesTheLeaderFirst(t *testing.T) {
	topo, _ := topology.Generate("lab", 3, 2)
	if got := majority(topo, "etcd3"); !slices.Equal(got, []string{"etcd3", "etcd1"}) {
		t.Errorf("majority(etcd3) = %v", got)
	}
	if got := majority(topo, ""); !slices.Equal(got, []string{"etcd1", "etcd2"}) {
		t.Errorf("majority() = %v", got)
	}
	five, _ := topology.Generate("lab", 5, 2)
	if got := majority(five, "etcd5"); len(got) != 3 || got[0] != "etcd5" {
		t.Errorf("majority of 5 = %v", got)
	}
}

// Every fault on members is healed after an interrupt: every container of
// the cluster runs again.
func TestMemberFaultsHealOnCancel(t *testing.T) {
	cases := []struct {
		f    Fault
		node string
		down []string // containers the fault stops
	}{
		{EtcdQuorum{}, "etcd2", []string{"lab-etcd2", "lab-etcd1"}},
		{EtcdLeader{}, "etcd3", []string{"lab-etcd3"}},
		{ReplicaKill{}, "patroni1", []string{"lab-patroni1"}},
		{StoreDown{}, "", []string{"lab-versitygw"}},
		{PowerLoss{}, "", []string{"lab-etcd1", "lab-etcd2", "lab-etcd3", "lab-patroni1", "lab-patroni2", "lab-patroni3", "lab-versitygw", "lab-guard"}},
	}
	for _, c := range cases {
		t.Run(c.f.Name(), func(t *testing.T) {
			tg, e := wholeCluster(t)
			ctx, cancel := context.WithCancel(context.Background())
			in, err := Inject(ctx, c.f, tg, c.node)
			if err != nil {
				t.Fatal(err)
			}
			var stopped []string
			for name, ct := range e.Containers {
				if ct.State != container.StateRunning {
					stopped = append(stopped, name)
				}
			}
			slices.Sort(stopped)
			want := slices.Clone(c.down)
			slices.Sort(want)
			if !slices.Equal(stopped, want) {
				t.Errorf("the fault stopped %v, want %v", stopped, want)
			}
			cancel() // Ctrl-C
			if err := in.Close(); err != nil {
				t.Fatalf("close after cancel: %v", err)
			}
			for name, ct := range e.Containers {
				if ct.State != container.StateRunning {
					t.Errorf("after Close %s is %s", name, ct.State)
				}
			}
		})
	}
}

// power-loss heals with the cluster's own Up when it has one.
func TestPowerLossHealsWithUp(t *testing.T) {
	tg, _ := wholeCluster(t)
	ups := 0
	tg.Up = func(context.Context) error { ups++; return nil }
	in, err := Inject(context.Background(), PowerLoss{}, tg, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil || ups != 1 {
		t.Errorf("heal: %v, %d calls of Up", err, ups)
	}
}

// A dcs-partition cuts the node off every etcd member and every other
// Patroni node, and off nothing else (not the store, not the guard).
func TestPeerAddresses(t *testing.T) {
	tg, e := wholeCluster(t)
	ips, err := peerAddresses(context.Background(), tg, "patroni2")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range []string{"etcd1", "etcd2", "etcd3", "patroni1", "patroni3"} {
		want = append(want, e.Containers["lab-"+n].Networks[tg.Topo.NetworkName()])
	}
	slices.Sort(ips)
	slices.Sort(want)
	if !slices.Equal(ips, want) {
		t.Errorf("peers %v, want %v", ips, want)
	}
	// A peer off the network (stopped) makes the cut incomplete: refused.
	e.Containers["lab-etcd3"].Networks = map[string]string{}
	if _, err := peerAddresses(context.Background(), tg, "patroni2"); err == nil || !strings.Contains(err.Error(), "etcd3") {
		t.Errorf("a peer without an address: %v", err)
	}
}
