package cluster

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/engine/enginetest"
	"github.com/pgha/pgha/pkg/topology"
)

// labels are what pgha puts on a cluster's resource.
func labels(cluster, role, node string) map[string]string {
	return map[string]string{topology.LabelCluster: cluster, topology.LabelRole: role, topology.LabelNode: node}
}

// fakeCluster is an engine holding cluster lab's containers, network and
// volumes, plus things pgha did not make that look alike.
func fakeCluster(t *testing.T) *enginetest.Engine {
	t.Helper()
	t.Setenv("PGHA_STATE_DIR", t.TempDir())
	e := enginetest.New()
	e.AddContainer(enginetest.Container{Name: "lab-etcd1", Labels: labels("lab", topology.RoleEtcd, "etcd1")})
	e.AddContainer(enginetest.Container{Name: "lab-patroni1", Labels: labels("lab", topology.RolePatroni, "patroni1"), State: container.StatePaused})
	e.AddContainer(enginetest.Container{Name: "lab-patroni2", Labels: labels("lab", topology.RolePatroni, "patroni2"), State: container.StateExited})
	e.Networks["lab-pgnet"] = labels("lab", topology.RoleNetwork, "")
	e.Volumes["pgha-lab-patroni1-data"] = labels("lab", topology.RoleVolume, "patroni1")
	// Not pgha's: same names and prefixes, another cluster's or no labels.
	e.AddContainer(enginetest.Container{Name: "lab-patroni3", Labels: map[string]string{"app": "mine"}})
	e.AddContainer(enginetest.Container{Name: "other-patroni1", Labels: labels("other", topology.RolePatroni, "patroni1")})
	e.Networks["lab-pgnet-2"] = map[string]string{}
	e.Volumes["pgha-lab-patroni3-data"] = map[string]string{}
	e.Volumes["pgha-other-patroni1-data"] = labels("other", topology.RoleVolume, "patroni1")
	return e
}

func TestDownRemovesOnlyTheClustersOwn(t *testing.T) {
	e := fakeCluster(t)
	d := NewDocker(engine.New(e), nil)
	res, err := d.Down(context.Background(), "lab", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sorted(res.Containers), " "); got != "lab-etcd1 lab-patroni1 lab-patroni2" {
		t.Errorf("removed containers %q", got)
	}
	for _, keep := range []string{"lab-patroni3", "other-patroni1"} {
		if e.Containers[keep] == nil {
			t.Errorf("%s was removed", keep)
		}
	}
	if _, ok := e.Networks["lab-pgnet-2"]; !ok || len(res.Networks) != 1 {
		t.Errorf("networks removed %v; the unlabelled one must stay", res.Networks)
	}
	// Without -v every volume stays; a running container is stopped first
	// (clean shutdown), a paused one unpaused first, an exited one not stopped.
	if len(res.Volumes) != 0 || len(e.Volumes) != 3 {
		t.Errorf("volumes removed without -v: %v", res.Volumes)
	}
	for _, call := range []string{"stop lab-etcd1", "unpause lab-patroni1", "stop lab-patroni1"} {
		if !e.Called(call) {
			t.Errorf("no %q in %v", call, e.Calls)
		}
	}
	if e.Called("stop lab-patroni2") {
		t.Error("an exited container was stopped")
	}
}

func TestDownVolumesAndAlreadyGone(t *testing.T) {
	e := fakeCluster(t)
	// Removed by someone else in the meantime: NotFound counts as removed.
	e.Fail["remove lab-etcd1"] = enginetest.NotFound("container")
	d := NewDocker(engine.New(e), nil)
	res, err := d.Down(context.Background(), "lab", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Containers) != 3 || strings.Join(res.Volumes, " ") != "pgha-lab-patroni1-data" {
		t.Errorf("removed %v and volumes %v", res.Containers, res.Volumes)
	}
	if _, ok := e.Volumes["pgha-lab-patroni3-data"]; !ok {
		t.Error("an unlabelled volume with the cluster's name pattern was removed")
	}
	if e.Called("stop lab-etcd1") {
		t.Error("down -v stopped a container gracefully; it removes at once")
	}
	// Nothing left: a second down is no error and removes nothing.
	delete(e.Fail, "remove lab-etcd1")
	delete(e.Containers, "lab-etcd1")
	res, err = d.Down(context.Background(), "lab", true)
	if err != nil || !res.Empty() {
		t.Errorf("second down: %+v %v", res, err)
	}
}

func TestDownReportsOtherFailures(t *testing.T) {
	e := fakeCluster(t)
	e.Fail["remove lab-patroni1"] = context.DeadlineExceeded
	_, err := NewDocker(engine.New(e), nil).Down(context.Background(), "lab", true)
	if err == nil || !strings.Contains(err.Error(), "removing container lab-patroni1") {
		t.Errorf("err = %v", err)
	}
	if _, ok := e.Networks["lab-pgnet"]; !ok {
		t.Error("the network was removed although a container could not be")
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
