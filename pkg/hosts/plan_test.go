package hosts

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pgha/pgha/pkg/topology"
)

// The seed topology on three hosts: host i runs etcd member i and Patroni
// node i; h1 also the object store and the router.
func TestPortPlanSeed(t *testing.T) {
	topo, err := topology.Generate(topology.DefaultName, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PortPlan(topo, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]int{1: {2379, 5000, 5001, 5435, 7000, 8008, 9000}, 2: {5436, 8010, 22379}, 3: {5437, 8012, 32379}}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan %v, want %v", plan, want)
	}
	if errs := checkPorts(plan, 3); len(errs) > 0 {
		t.Errorf("the plan does not pass Create's checks: %v", errs)
	}

	// Shifted, on five hosts: h4 and h5 run nothing; --ports adds.
	topo.ShiftPorts(100)
	plan, err = PortPlan(topo, 5, topology.StoreVersityGW)
	if err != nil {
		t.Fatal(err)
	}
	plan = AddPorts(plan, map[int][]int{1: {2479, 15000}, 4: {16000}})
	want = map[int][]int{1: {2479, 5100, 5101, 5535, 7100, 8108, 9100, 15000}, 2: {5536, 8110, 22479}, 3: {5537, 8112, 32479}, 4: {16000}}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("shifted plan %v, want %v", plan, want)
	}

	// One host runs everything.
	topo, _ = topology.Generate("one", 1, 2)
	plan, err = PortPlan(topo, 1, "")
	if err != nil || len(plan) != 1 || len(plan[1]) != 1+2*2+1+3 {
		t.Errorf("one host: %v %v", plan, err)
	}
}

// A placement on a host that is not there says so.
func TestPortPlanPlacement(t *testing.T) {
	topo, _ := topology.Generate(topology.DefaultName, 3, 3)
	topo.Engine = topology.EngineSwarm
	topo.Patroni[0].Placement = "h3"
	plan, err := PortPlan(topo, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plan[3], []int{5435, 5437, 8008, 8012, 32379}) {
		t.Errorf("h3: %v", plan[3])
	}
	topo.Patroni[0].Placement = "h7"
	if _, err := PortPlan(topo, 3, ""); err == nil || !strings.Contains(err.Error(), "h7") {
		t.Errorf("placement on a missing host: %v", err)
	}
}
