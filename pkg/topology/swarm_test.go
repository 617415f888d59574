package topology

import (
	"reflect"
	"strings"
	"testing"
)

func TestPlaceRoundRobin(t *testing.T) {
	c := Seed()
	c.Engine = EngineSwarm
	nodes := []SwarmNode{{Hostname: "h3"}, {Hostname: "h1"}, {Hostname: "h2", Labels: map[string]string{"zone": "b"}}}
	got, err := c.Place(nodes, StoreVersityGW)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"etcd1": "h1", "etcd2": "h2", "etcd3": "h3", "patroni1": "h1", "patroni2": "h2", "patroni3": "h3", StoreVersityGW: "h1", RouterNode: "h1"}
	for m, h := range want {
		if got[m].Node != h || got[m].Constraint != "node.hostname=="+h {
			t.Errorf("%s placed on %+v, want %s", m, got[m], h)
		}
	}
	ports := c.PortsByNode(got, StoreVersityGW)
	if !reflect.DeepEqual(ports["h2"], []int{5436, 8010, 22379}) {
		t.Errorf("h2 ports %v", ports["h2"])
	}
	if !reflect.DeepEqual(ports["h1"], []int{2379, 5000, 5001, 5435, 7000, 8008, 9000}) {
		t.Errorf("h1 ports %v", ports["h1"])
	}

	c.Patroni[0].Placement = "node.labels.zone==b"
	c.Patroni[1].Placement = "h3"
	got, err = c.Place(nodes, StoreVersityGW)
	if err != nil {
		t.Fatal(err)
	}
	if got["patroni1"].Node != "h2" || got["patroni2"].Node != "h3" {
		t.Errorf("overrides not applied: %+v", got)
	}

	c.Patroni[2].Placement = "h9"
	c.Etcd[0].Placement = "node.labels.zone==z"
	_, err = c.Place(nodes, StoreVersityGW)
	if err == nil || !strings.Contains(err.Error(), `patroni3: placement "h9"`) || !strings.Contains(err.Error(), "no node has the label zone=z") {
		t.Errorf("want both placement problems, got %v", err)
	}
}

func TestPlacementValidation(t *testing.T) {
	c := Seed()
	c.Patroni[0].Placement = "h1"
	c.Engine = "k8s"
	_, err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `engine "k8s"`) || !strings.Contains(err.Error(), "apply only with engine: swarm") {
		t.Errorf("got %v", err)
	}
	c.Engine = EngineSwarm
	c.Patroni[1].Placement = "node.labels.zone"
	_, err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), `patroni[1].placement "node.labels.zone"`) {
		t.Errorf("got %v", err)
	}
	c.Patroni[1].Placement = "node.labels.zone==a"
	if _, err := c.Validate(); err != nil {
		t.Errorf("valid placements refused: %v", err)
	}
}
