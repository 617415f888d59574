package hosts

import (
	"fmt"
	"slices"

	"github.com/pgha/pgha/pkg/topology"
)

// PortPlan is the ports each of count hosts publishes for a cluster that
// runs on them: the members placed on h1…hN as pgha's swarm deployment
// places them (topology.Cluster.Place, round-robin unless the topology says
// otherwise), then each node's ports (topology.Cluster.PortsByNode). The
// keys are host indexes, as Options.Ports takes them. storeKind "" is
// versitygw, pgha's default object store.
func PortPlan(topo topology.Cluster, count int, storeKind string) (map[int][]int, error) {
	if storeKind == "" {
		storeKind = topology.StoreVersityGW
	}
	nodes := make([]topology.SwarmNode, count)
	index := map[string]int{}
	for i := 1; i <= count; i++ {
		nodes[i-1] = topology.SwarmNode{Hostname: HostName(i)}
		index[HostName(i)] = i
	}
	places, err := topo.Place(nodes, storeKind)
	if err != nil {
		return nil, err
	}
	plan := map[int][]int{}
	for host, ports := range topo.PortsByNode(places, storeKind) {
		i, ok := index[host]
		if !ok {
			return nil, fmt.Errorf("cluster %s is placed on %s, which is not one of h1 to h%d", topo.Name, host, count)
		}
		plan[i] = slices.Clone(ports)
	}
	return plan, nil
}

// AddPorts adds more ports to a plan, each once per host, and sorts them.
func AddPorts(plan, more map[int][]int) map[int][]int {
	out := map[int][]int{}
	for _, m := range []map[int][]int{plan, more} {
		for i, ports := range m {
			for _, p := range ports {
				if !slices.Contains(out[i], p) {
					out[i] = append(out[i], p)
				}
			}
		}
	}
	for _, ports := range out {
		slices.Sort(ports)
	}
	return out
}
