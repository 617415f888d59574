package ops

import (
	"strings"
	"testing"

	"github.com/pgha/pgha/pkg/topology"
)

func TestNodeAndMember(t *testing.T) {
	topo, _ := topology.Generate("lab", 3, 3)
	for arg, want := range map[string]string{"patroni2": "patroni2", "lab-patroni2": "patroni2"} {
		if got, err := Node(topo, arg); err != nil || got != want {
			t.Errorf("Node(%q) = %q, %v", arg, got, err)
		}
	}
	for _, arg := range []string{"etcd1", "patroni4", "lab-etcd1", "pgha-patroni1", ""} {
		if _, err := Node(topo, arg); err == nil || !strings.Contains(err.Error(), "is not a Patroni member of cluster lab (members: patroni1, patroni2, patroni3)") {
			t.Errorf("Node(%q): error %v", arg, err)
		}
	}
	for arg, want := range map[string]string{"etcd3": "etcd3", "lab-versitygw": "versitygw", "guard": "guard", "patroni1": "patroni1"} {
		if got, err := Member(topo, topology.StoreVersityGW, arg); err != nil || got != want {
			t.Errorf("Member(%q) = %q, %v", arg, got, err)
		}
	}
	topo.Guard = false
	if _, err := Member(topo, "", "guard"); err == nil || !strings.Contains(err.Error(), "is not a member of cluster lab") {
		t.Errorf("the guard of a cluster without one: %v", err)
	}
	// The default cluster's containers have bare names.
	seed := topology.Seed()
	if got, err := Node(seed, "patroni3"); err != nil || got != "patroni3" {
		t.Errorf("seed: %q, %v", got, err)
	}
}
