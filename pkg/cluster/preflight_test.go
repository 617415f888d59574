package cluster

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/engine/enginetest"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// labTopology is a 1 etcd + 2 Patroni cluster "lab" on host ports that are
// free on this machine now (other clusters may run beside the tests).
func labTopology(t *testing.T) topology.Cluster {
	t.Helper()
	for offset := 31000; offset < 60000; offset += 137 {
		topo, err := topology.Generate("lab", 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		topo.ShiftPorts(offset)
		free := true
		for _, hp := range topo.HostPorts(topology.StoreMinIO) {
			if portFree(hp.Port) != nil {
				free = false
			}
		}
		if free {
			return topo
		}
	}
	t.Fatal("no free ports for the test cluster")
	return topology.Cluster{}
}

func planOf(topo topology.Cluster) []Spec {
	imgs := images.ImageSet{Etcd: images.Image{Ref: "pgha/etcd:e"}, Patroni: images.Image{Ref: "pgha/patroni:p"},
		ObjectStore: images.Image{Ref: "pgha/objectstore:o", Kind: topology.StoreVersityGW}, Guard: images.Image{Ref: "pgha/guard:g"}}
	return Plan(topo, imgs, secrets.Secrets{}, secrets.Store{}, "/var/run/docker.sock")
}

func TestPreflightOnAnEmptyEngine(t *testing.T) {
	topo := labTopology(t)
	d := NewDocker(engine.New(enginetest.New()), nil)
	existing, err := d.preflight(context.Background(), topo, planOf(topo))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range existing {
		if c.Exists() {
			t.Errorf("%s exists on an empty engine", name)
		}
	}
}

// Everything in the way is named at once, and nothing is changed.
func TestPreflightNamesEveryObstacle(t *testing.T) {
	topo := labTopology(t)
	e := enginetest.New()
	e.AddContainer(enginetest.Container{Name: "lab-patroni1", Labels: map[string]string{"app": "mine"}})
	e.Networks["lab-pgnet"] = map[string]string{}
	e.Volumes["pgha-lab-etcd1-data"] = labels("other", topology.RoleVolume, "etcd1")
	// Another container publishes patroni2's PostgreSQL port.
	pg2, _ := topo.PatroniNode("patroni2")
	e.AddContainer(enginetest.Container{Name: "squatter", Ports: []int{pg2.PGPort}})
	// A process outside containers holds the object store's port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	topo.ObjectStore.APIPort = l.Addr().(*net.TCPAddr).Port

	_, err = NewDocker(engine.New(e), nil).preflight(context.Background(), topo, planOf(topo))
	if err == nil {
		t.Fatal("preflight passed with obstacles")
	}
	for _, want := range []string{
		`cannot create cluster "lab" (nothing was changed)`,
		`container "lab-patroni1" exists and was not created by pgha`,
		`network "lab-pgnet" exists and was not created by pgha`,
		`volume "pgha-lab-etcd1-data" exists and was not created by pgha`,
		"is already published by container squatter",
		"(objectStore S3 API) is already in use on 127.0.0.1",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if len(e.Calls) != 0 {
		t.Errorf("preflight changed something: %v", e.Calls)
	}
}

// The cluster's own containers hold its ports by design, in any state that
// holds them: running or paused (an interrupted pause test).
func TestPreflightAcceptsTheClustersOwnPorts(t *testing.T) {
	topo := labTopology(t)
	e := enginetest.New()
	for _, s := range planOf(topo) {
		st := container.StateRunning
		if s.Node == "patroni1" {
			st = container.StatePaused
		}
		var ports []int
		for _, bs := range s.Host.PortBindings {
			for _, b := range bs {
				p, _ := strconv.Atoi(b.HostPort)
				ports = append(ports, p)
			}
		}
		e.AddContainer(enginetest.Container{Name: s.Name, Labels: s.Config.Labels, State: st, Ports: ports})
		// Hold the ports as the engine's proxy would.
		for _, p := range ports {
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
				defer l.Close()
			}
		}
	}
	e.Networks["lab-pgnet"] = labels("lab", topology.RoleNetwork, "")
	existing, err := NewDocker(engine.New(e), nil).preflight(context.Background(), topo, planOf(topo))
	if err != nil {
		t.Fatalf("preflight refused the cluster's own ports: %v", err)
	}
	if existing["lab-patroni1"].State != container.StatePaused {
		t.Errorf("patroni1 observed as %s", existing["lab-patroni1"].State)
	}
}
