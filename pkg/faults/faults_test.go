package faults

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/engine/enginetest"
	"github.com/pgha/pgha/pkg/topology"
)

// backend runs every member on one fake engine; Isolate and Rejoin record.
type backend struct {
	eng   *engine.Engine
	calls []string
	fail  map[string]error
}

func (b *backend) Where(topo topology.Cluster, node string) (*engine.Engine, string) {
	return b.eng, topo.ContainerName(node)
}
func (b *backend) Isolate(_ context.Context, _ topology.Cluster, node string) error {
	b.calls = append(b.calls, "isolate "+node)
	return b.fail["isolate"]
}
func (b *backend) Rejoin(ctx context.Context, _ topology.Cluster, node string) error {
	if ctx.Err() != nil {
		return ctx.Err() // a heal on a dead context would heal nothing
	}
	b.calls = append(b.calls, "rejoin "+node)
	return nil
}

func target(t *testing.T) (Target, *enginetest.Engine, *backend) {
	t.Helper()
	e := enginetest.New()
	topo, _ := topology.Generate("lab", 1, 2)
	for _, n := range topo.Patroni {
		e.AddContainer(enginetest.Container{Name: topo.ContainerName(n.Name)})
	}
	b := &backend{eng: engine.New(e), fail: map[string]error{}}
	return Target{Backend: b, Topo: topo}, e, b
}

func TestRegistryDrivesLookupAndHelp(t *testing.T) {
	for _, name := range []string{"stop", "kill", "pause", "partition"} {
		f, err := Lookup(name)
		if err != nil || f.Name() != name {
			t.Errorf("Lookup(%q) = %v, %v", name, f, err)
		}
		if !strings.Contains(Help(), name+" ") {
			t.Errorf("help lacks %s:\n%s", name, Help())
		}
	}
	if _, err := Lookup("meteor"); err == nil || !strings.Contains(err.Error(), "use stop, kill, pause, partition, dcs-partition") {
		t.Errorf("unknown fault: %v", err)
	}
	if !(Kill{}).Promises().EngineConfirmsDeath || (Pause{}).Promises().EngineConfirmsDeath || !(Partition{}).Promises().CutsPorts || !(Stop{}).Promises().Graceful {
		t.Error("promises")
	}
}

// A test interrupted after the fault (its context cancelled) still leaves
// every member running and attached: Close heals on a context of its own.
func TestHealOnCancel(t *testing.T) {
	for _, f := range []Fault{Stop{}, Kill{}, Pause{}, Partition{}} {
		t.Run(f.Name(), func(t *testing.T) {
			tg, e, b := target(t)
			ctx, cancel := context.WithCancel(context.Background())
			in, err := Inject(ctx, f, tg, "patroni2")
			if err != nil {
				t.Fatal(err)
			}
			cancel() // Ctrl-C
			if err := in.Close(); err != nil {
				t.Fatalf("close after cancel: %v", err)
			}
			if st := e.Containers["lab-patroni2"].State; st != container.StateRunning {
				t.Errorf("after Close the member is %s", st)
			}
			if f.Name() == "partition" && strings.Join(b.calls, ",") != "isolate patroni2,rejoin patroni2" {
				t.Errorf("calls %v", b.calls)
			}
			// Healing twice heals once.
			if err := in.Heal(context.Background()); err != nil {
				t.Errorf("second heal: %v", err)
			}
		})
	}
}

func TestHealOnceAndItsError(t *testing.T) {
	tg, e, _ := target(t)
	in, err := Inject(context.Background(), Kill{}, tg, "patroni1")
	if err != nil {
		t.Fatal(err)
	}
	e.Fail["start lab-patroni1"] = errors.New("no space left")
	err = in.Heal(context.Background())
	if err == nil || !strings.Contains(err.Error(), "healing kill on patroni1") || !strings.Contains(err.Error(), "no space left") {
		t.Errorf("heal error %v", err)
	}
	delete(e.Fail, "start lab-patroni1")
	if err2 := in.Close(); err2 == nil {
		t.Error("Close after a failed Heal healed again; it reports the first outcome")
	}
}

// An injection that fails part-way is healed before the error returns.
func TestFailedInjectionIsHealed(t *testing.T) {
	tg, _, b := target(t)
	b.fail["isolate"] = errors.New("network gone")
	_, err := Inject(context.Background(), Partition{}, tg, "patroni1")
	if err == nil || !strings.Contains(err.Error(), "injecting partition on patroni1: network gone") {
		t.Errorf("err = %v", err)
	}
	if strings.Join(b.calls, ",") != "isolate patroni1,rejoin patroni1" {
		t.Errorf("calls %v", b.calls)
	}
}
