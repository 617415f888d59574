package cluster

import (
	"reflect"
	"testing"

	"github.com/pgha/pgha/pkg/topology"
)

func TestGrown(t *testing.T) {
	topo, _ := topology.Generate("lab", 3, 3)
	topo.ShiftPorts(100)
	g := Grown(topo, 5, nil)
	want := []topology.PGNode{{Name: "patroni4", PGPort: 5538, RESTPort: 8114}, {Name: "patroni5", PGPort: 5539, RESTPort: 8116}}
	if !reflect.DeepEqual(g.Patroni[3:], want) {
		t.Errorf("new nodes %v, want %v", g.Patroni[3:], want)
	}
	if len(topo.Patroni) != 3 {
		t.Error("Grown changed its input")
	}
	// A gap in the names is filled first; ports never collide.
	gap := topo
	gap.Patroni = []topology.PGNode{topo.Patroni[0], topo.Patroni[2]}
	g = Grown(gap, 3, nil)
	if n := g.Patroni[2]; n.Name != "patroni2" || n.PGPort != 5538 || n.RESTPort != 8114 {
		t.Errorf("filled the gap with %+v", n)
	}
	// Ports in use elsewhere are skipped.
	busy := map[int]bool{5538: true, 8114: true, 8116: true}
	g = Grown(topo, 4, func(p int) bool { return busy[p] })
	if n := g.Patroni[3]; n.PGPort != 5539 || n.RESTPort != 8118 {
		t.Errorf("skipping busy ports: got %+v", n)
	}
	seen := map[int]bool{}
	for _, hp := range Grown(topo, MaxPatroni, nil).HostPorts(topology.StoreMinIO) {
		if seen[hp.Port] {
			t.Errorf("port %d used twice", hp.Port)
		}
		seen[hp.Port] = true
	}
}

func TestShrinkVictims(t *testing.T) {
	topo, _ := topology.Generate("lab", 3, 5)
	for _, tc := range []struct {
		n      int
		leader string
		want   []string
	}{
		{3, "patroni1", []string{"patroni5", "patroni4"}},
		{3, "patroni5", []string{"patroni4", "patroni3"}},
		{1, "patroni2", []string{"patroni5", "patroni4", "patroni3", "patroni1"}},
		{5, "patroni1", []string{}},
	} {
		if got := ShrinkVictims(topo, tc.n, tc.leader); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("to %d with leader %s: %v, want %v", tc.n, tc.leader, got, tc.want)
		}
	}
	ten := Grown(topo, 10, nil)
	if got := ShrinkVictims(ten, 9, "patroni1"); !reflect.DeepEqual(got, []string{"patroni10"}) {
		t.Errorf("patroni10 is the newest: got %v", got)
	}
}
