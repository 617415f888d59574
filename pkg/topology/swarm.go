package topology

import (
	"fmt"
	"sort"
	"strings"
)

// Engines a cluster runs on.
const (
	// EngineDocker: every member is a container of one Docker engine.
	EngineDocker = "docker"
	// EngineSwarm: every member is a service of a Docker Swarm, pinned to a node.
	EngineSwarm = "swarm"
)

// OnSwarm says whether the cluster runs as services of a Docker Swarm.
func (c Cluster) OnSwarm() bool { return c.Engine == EngineSwarm }

// SwarmNode is what placement needs of a node of the swarm.
type SwarmNode struct {
	Hostname string
	Labels   map[string]string
}

// Placement is where one member runs on a swarm: the node's host name, and
// the service constraint that pins it there.
type Placement struct {
	Node       string `json:"node"`
	Constraint string `json:"constraint"`
}

// placementOf is a member's placement as the topology says it ("" for the default).
func (c Cluster) placementOf(node string) string {
	for _, e := range c.Etcd {
		if e.Name == node {
			return e.Placement
		}
	}
	for _, p := range c.Patroni {
		if p.Name == node {
			return p.Placement
		}
	}
	switch node {
	case RouterNode:
		return c.RouterPlacement
	case StoreVersityGW, StoreMinIO, ObjectStoreAlias:
		return c.StorePlacement
	}
	return ""
}

// Place decides the node of every member that publishes ports on a swarm
// whose nodes are given: by default etcd member i and Patroni node i on
// node i (round-robin over the nodes sorted by host name), the object store
// and the router on the first; a member's placement overrides it with a host
// name or a node label (node.labels.KEY==VALUE, the first node that has it).
// storeKind names the store's member (versitygw, minio).
func (c Cluster) Place(nodes []SwarmNode, storeKind string) (map[string]Placement, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("the swarm has no node that can run tasks")
	}
	sorted := append([]SwarmNode(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Hostname < sorted[j].Hostname })
	out := map[string]Placement{}
	var problems []string
	place := func(member string, def int) {
		want := c.placementOf(member)
		if want == "" {
			h := sorted[def%len(sorted)].Hostname
			out[member] = Placement{Node: h, Constraint: "node.hostname==" + h}
			return
		}
		if key, value, ok := labelConstraint(want); ok {
			for _, n := range sorted {
				if v, has := n.Labels[key]; has && v == value {
					out[member] = Placement{Node: n.Hostname, Constraint: "node.hostname==" + n.Hostname}
					return
				}
			}
			problems = append(problems, fmt.Sprintf("%s: placement %q: no node has the label %s=%s", member, want, key, value))
			return
		}
		for _, n := range sorted {
			if n.Hostname == want {
				out[member] = Placement{Node: n.Hostname, Constraint: "node.hostname==" + n.Hostname}
				return
			}
		}
		problems = append(problems, fmt.Sprintf("%s: placement %q: no node of the swarm has that host name (%s)", member, want, strings.Join(hostnames(sorted), ", ")))
	}
	for i, e := range c.Etcd {
		place(e.Name, i)
	}
	for i, p := range c.Patroni {
		place(p.Name, i)
	}
	if storeKind == "" {
		storeKind = StoreVersityGW
	}
	place(storeKind, 0)
	if c.Router {
		place(RouterNode, 0)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("placing cluster %s on the swarm:\n  - %s", c.Name, strings.Join(problems, "\n  - "))
	}
	return out, nil
}

// PortsByNode is the host ports each node publishes for the cluster, given
// where the members run (the test hosts must publish them).
func (c Cluster) PortsByNode(places map[string]Placement, storeKind string) map[string][]int {
	out := map[string][]int{}
	for _, hp := range c.HostPorts(storeKind) {
		member := hp.Node
		if member == "objectStore" {
			member = storeKind
			if member == "" {
				member = StoreVersityGW
			}
		}
		if p, ok := places[member]; ok {
			out[p.Node] = append(out[p.Node], hp.Port)
		}
	}
	for _, ports := range out {
		sort.Ints(ports)
	}
	return out
}

// labelConstraint reads node.labels.KEY==VALUE.
func labelConstraint(s string) (key, value string, ok bool) {
	rest, found := strings.CutPrefix(strings.ReplaceAll(s, " ", ""), "node.labels.")
	if !found {
		return "", "", false
	}
	key, value, ok = strings.Cut(rest, "==")
	return key, value, ok && key != "" && value != ""
}

func hostnames(nodes []SwarmNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Hostname)
	}
	return out
}

// validatePlacements checks the engine and the placements' form.
func (c Cluster) validatePlacements(add func(string, ...any)) {
	switch c.Engine {
	case "", EngineDocker, EngineSwarm:
	default:
		add("engine %q: use %s or %s", c.Engine, EngineDocker, EngineSwarm)
	}
	check := func(where, p string) {
		if p == "" {
			return
		}
		if c.Engine != EngineSwarm {
			add("%s %q: placements apply only with engine: swarm", where, p)
			return
		}
		if strings.HasPrefix(p, "node.") {
			if _, _, ok := labelConstraint(p); !ok {
				add("%s %q: use a node's host name or node.labels.KEY==VALUE", where, p)
			}
			return
		}
		if !nodeName.MatchString(strings.ToLower(p)) {
			add("%s %q: use a node's host name or node.labels.KEY==VALUE", where, p)
		}
	}
	for i, e := range c.Etcd {
		check(fmt.Sprintf("etcd[%d].placement", i), e.Placement)
	}
	for i, n := range c.Patroni {
		check(fmt.Sprintf("patroni[%d].placement", i), n.Placement)
	}
	check("storePlacement", c.StorePlacement)
	check("routerPlacement", c.RouterPlacement)
}
