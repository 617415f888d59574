package guard

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgha/pgha/pkg/topology"
)

// Config is what the guard protects, handed to it by pgha when it plans the
// guard's container: the guard discovers nothing through the engine (it
// could not: its proxy refuses inspect), so a container that merely carries
// the cluster's labels is not one of its members.
type Config struct {
	// Cluster is the value of the cluster label on its containers.
	Cluster string
	// LeaderKey is Patroni's leader key in etcd: <namespace>/<scope>/leader.
	LeaderKey string
	// Members maps each Patroni container's name to its member name.
	Members map[string]string
}

// ConfigFor is the guard's configuration for a cluster.
func ConfigFor(topo topology.Cluster) Config {
	c := Config{Cluster: topo.Name, LeaderKey: topo.KeyPrefix() + "leader", Members: map[string]string{}}
	for _, n := range topo.Patroni {
		c.Members[topo.ContainerName(n.Name)] = n.Name
	}
	return c
}

// Validate says what is missing.
func (c Config) Validate() error {
	var missing []string
	if c.Cluster == "" {
		missing = append(missing, "the cluster's name")
	}
	if c.LeaderKey == "" {
		missing = append(missing, "the leader key")
	}
	if len(c.Members) == 0 {
		missing = append(missing, "the Patroni members")
	}
	if len(missing) > 0 {
		return fmt.Errorf("guard configuration without %s", strings.Join(missing, ", "))
	}
	return nil
}

// memberNames lists the members, sorted.
func (c Config) memberNames() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Where the guard reaches the engine: its API proxy's unix socket, in a
// directory that only the proxy's and the guard's containers mount.
const (
	APIDir    = "/run/pgha-guard"
	APISocket = APIDir + "/engine.sock"
)
