// Package topology is the cluster model: types, the seed defaults, strict YAML
// loading, validation, and everything derived from a topology (container,
// network and volume names, labels, ports, Patroni configuration).
// It does no I/O besides reading the topology file it is given.
package topology

import (
	"fmt"
	"sort"
)

// DefaultName is the cluster name used when none is given. The default cluster
// keeps the guide's bare container names (etcd1, patroni2, ...) and network pgnet;
// any other cluster prefixes them with its name so that clusters can coexist.
const DefaultName = "pgha"

// Labels that mark every resource pgha creates. They are the ownership record:
// pgha only changes or removes what carries its cluster's label.
const (
	LabelCluster  = "io.pgha.cluster"
	LabelRole     = "io.pgha.role"
	LabelNode     = "io.pgha.node"
	LabelTopology = "io.pgha.topology"
	// LabelGeneration is on Patroni data volumes: a restore writes into a new
	// generation and removes the old one only once the restored cluster
	// verifies healthy.
	LabelGeneration = "io.pgha.generation"
)

// Roles of the resources pgha creates.
const (
	RoleEtcd        = "etcd"
	RolePatroni     = "patroni"
	RoleObjectStore = "objectstore"
	RoleNetwork     = "network"
	RoleVolume      = "volume"
	RoleGuard       = "guard"
	RoleRouter      = "router"
	// RoleSecret: a Swarm secret holding one of a member's files.
	RoleSecret = "secret"
)

// GuardNode is the guard's node name: its container is ContainerName(GuardNode)
// and its host name on the cluster network.
const GuardNode = "guard"

// GuardProxyNode is the guard's engine API proxy: the only container of the
// guard's with the engine's socket.
const GuardProxyNode = "guard-proxy"

// RouterNode is the router's node name: its container is
// ContainerName(RouterNode) and its host name on the cluster network.
const RouterNode = "router"

// Container ports, the same in every cluster; only host ports differ.
const (
	EtcdClientPort = 2379
	EtcdPeerPort   = 2380
	PostgresPort   = 5432
	PatroniAPIPort = 8008
	S3APIPort      = 9000
	S3ConsolePort  = 9001
	// The router's listeners: the primary, the replicas, the stats page.
	RouterPrimaryPort = 5000
	RouterReplicaPort = 5001
	RouterStatsPort   = 7000
)

// Cluster is a topology: what pgha up builds.
type Cluster struct {
	Name            string `yaml:"name" json:"name"`
	Scope           string `yaml:"scope" json:"scope"`
	Namespace       string `yaml:"namespace" json:"namespace"`
	BootstrapLeader string `yaml:"bootstrapLeader" json:"bootstrapLeader"`
	// Profile is Patroni's failover timing: fast (default) or seed.
	Profile string `yaml:"profile" json:"profile"`
	// SynchronousMode is off (default), on or strict.
	SynchronousMode string      `yaml:"synchronousMode" json:"synchronousMode"`
	Etcd            []EtcdNode  `yaml:"etcd" json:"etcd"`
	Patroni         []PGNode    `yaml:"patroni" json:"patroni"`
	ObjectStore     ObjectStore `yaml:"objectStore" json:"objectStore"`
	// Guard runs the fencing guard (on by default): when the engine confirms
	// that the primary's container died, it deletes the dead member's leader
	// key so that a replica takes over at once instead of after the lease.
	// Decoders start from a Cluster with Guard true, so a file or label
	// without the field keeps it on.
	Guard bool `yaml:"guard" json:"guard"`
	// Router runs HAProxy (on by default): one address for the primary and
	// one for the replicas that follow a failover. Decoders of a file start
	// with it on; a label without it (a cluster made before the router
	// existed) leaves it off, since its ports were never checked free.
	Router bool `yaml:"router" json:"router"`
	// RouterPorts are the router's host ports.
	RouterPorts RouterPorts `yaml:"routerPorts" json:"routerPorts"`
	// Engine is where the cluster runs: docker (one engine, the default) or
	// swarm (services spread over the nodes of a Docker Swarm; see swarm.go).
	Engine string `yaml:"engine,omitempty" json:"engine,omitempty"`
	// Placement pins the object store and the router on a swarm (a node's
	// host name, or a constraint such as node.labels.zone==a); default: the
	// first node.
	StorePlacement  string `yaml:"storePlacement,omitempty" json:"storePlacement,omitempty"`
	RouterPlacement string `yaml:"routerPlacement,omitempty" json:"routerPlacement,omitempty"`
	// Restore, set by pgha restore only, bootstraps the cluster from a
	// backup instead of initdb. Never read from or written to a file.
	Restore *RestoreTarget `yaml:"-" json:"-"`
	// DataGeneration is the generation of the Patroni nodes' data volumes:
	// 0 for a cluster never restored. It is read from the volumes' labels
	// (state lives on the engine), never from a file.
	DataGeneration int `yaml:"-" json:"-"`
}

// EtcdNode is one etcd member.
type EtcdNode struct {
	Name       string `yaml:"name" json:"name"`
	ClientPort int    `yaml:"clientPort" json:"clientPort"` // host port for the client API
	// Placement: on a swarm, the node that runs it (see Cluster.Placement).
	Placement string `yaml:"placement,omitempty" json:"placement,omitempty"`
}

// PGNode is one Patroni + PostgreSQL node.
type PGNode struct {
	Name     string `yaml:"name" json:"name"`
	PGPort   int    `yaml:"pgPort" json:"pgPort"`     // host port for PostgreSQL
	RESTPort int    `yaml:"restPort" json:"restPort"` // host port for Patroni's REST API
	// Placement: on a swarm, the node that runs it (see Cluster.Placement).
	Placement string `yaml:"placement,omitempty" json:"placement,omitempty"`
}

// ObjectStore is the S3-compatible store for WAL archives and backups.
type ObjectStore struct {
	APIPort     int    `yaml:"apiPort" json:"apiPort"`
	ConsolePort int    `yaml:"consolePort" json:"consolePort"` // used by MinIO only
	Bucket      string `yaml:"bucket" json:"bucket"`
}

// RouterPorts are the router's host ports.
type RouterPorts struct {
	Primary  int `yaml:"primary" json:"primary"`   // read-write, the current primary
	Replicas int `yaml:"replicas" json:"replicas"` // read-only, the streaming replicas
	Stats    int `yaml:"stats" json:"stats"`       // HAProxy's stats page
}

// DefaultRouterPorts follow Patroni's demo and autobase: 5000 and 5001.
func DefaultRouterPorts() RouterPorts { return RouterPorts{Primary: 5000, Replicas: 5001, Stats: 7000} }

// Seed returns the reference topology of DESIGN.md §1: 3 etcd, 3 Patroni with
// patroni2 as bootstrap leader, the object store on 9000/9001.
func Seed() Cluster {
	c, _ := Generate(DefaultName, 3, 3)
	return c
}

// etcdClientPort follows the guide's etcd ports, 2379, 22379, 32379, then
// 42379 and so on (room for 6 members).
func etcdClientPort(i int) int {
	if i == 0 {
		return 2379
	}
	return 2379 + 10000*(i+1)
}

// Generate builds a topology with n etcd members and m Patroni nodes, on the
// seed's port pattern. The bootstrap leader is patroni2 when it exists.
func Generate(name string, etcd, patroni int) (Cluster, error) {
	if etcd < 1 || patroni < 1 {
		return Cluster{}, fmt.Errorf("a cluster needs at least 1 etcd member and 1 Patroni node (asked for %d and %d)", etcd, patroni)
	}
	c := Cluster{
		Name:            name,
		Scope:           "pg-cluster",
		Namespace:       "/service",
		ObjectStore:     ObjectStore{APIPort: 9000, ConsolePort: 9001, Bucket: "pgbackrest"},
		Profile:         DefaultProfile,
		SynchronousMode: SyncOff,
		Guard:           true,
		Router:          true,
		RouterPorts:     DefaultRouterPorts(),
	}
	for i := 0; i < etcd; i++ {
		c.Etcd = append(c.Etcd, EtcdNode{Name: fmt.Sprintf("etcd%d", i+1), ClientPort: etcdClientPort(i)})
	}
	for i := 0; i < patroni; i++ {
		c.Patroni = append(c.Patroni, PGNode{Name: fmt.Sprintf("patroni%d", i+1), PGPort: 5435 + i, RESTPort: 8008 + 2*i})
	}
	c.BootstrapLeader = "patroni1"
	if patroni >= 2 {
		c.BootstrapLeader = "patroni2"
	}
	return c, nil
}

// ShiftPorts adds offset to every host port, so that a second cluster can run
// beside the first.
func (c *Cluster) ShiftPorts(offset int) {
	for i := range c.Etcd {
		c.Etcd[i].ClientPort += offset
	}
	for i := range c.Patroni {
		c.Patroni[i].PGPort += offset
		c.Patroni[i].RESTPort += offset
	}
	c.ObjectStore.APIPort += offset
	if c.ObjectStore.ConsolePort != 0 {
		c.ObjectStore.ConsolePort += offset
	}
	if c.RouterPorts != (RouterPorts{}) {
		c.RouterPorts.Primary += offset
		c.RouterPorts.Replicas += offset
		c.RouterPorts.Stats += offset
	}
}

// applyDefaults fills what a topology file may leave out.
func (c *Cluster) applyDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Scope == "" {
		c.Scope = "pg-cluster"
	}
	if c.Namespace == "" {
		c.Namespace = "/service"
	}
	if c.ObjectStore.Bucket == "" {
		c.ObjectStore.Bucket = "pgbackrest"
	}
	if c.Profile == "" {
		c.Profile = DefaultProfile
	}
	if c.SynchronousMode == "" {
		c.SynchronousMode = SyncOff
	}
	if c.Router && c.RouterPorts == (RouterPorts{}) {
		c.RouterPorts = DefaultRouterPorts()
	}
	if c.BootstrapLeader == "" && len(c.Patroni) > 0 {
		c.BootstrapLeader = c.Patroni[0].Name
	}
}

// HostPorts returns every host port the cluster publishes, sorted, each with
// the place that uses it ("patroni2 PostgreSQL"). The console port is
// published only for MinIO (storeKind).
func (c Cluster) HostPorts(storeKind string) []HostPort {
	var ps []HostPort
	for _, e := range c.Etcd {
		ps = append(ps, HostPort{e.ClientPort, e.Name, "etcd client"})
	}
	for _, p := range c.Patroni {
		ps = append(ps, HostPort{p.PGPort, p.Name, "PostgreSQL"}, HostPort{p.RESTPort, p.Name, "Patroni REST"})
	}
	ps = append(ps, HostPort{c.ObjectStore.APIPort, "objectStore", "S3 API"})
	if c.ObjectStore.ConsolePort != 0 && storeKind == StoreMinIO {
		ps = append(ps, HostPort{c.ObjectStore.ConsolePort, "objectStore", "console"})
	}
	if c.Router {
		ps = append(ps, HostPort{c.RouterPorts.Primary, RouterNode, "primary"},
			HostPort{c.RouterPorts.Replicas, RouterNode, "replicas"}, HostPort{c.RouterPorts.Stats, RouterNode, "stats"})
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Port < ps[j].Port })
	return ps
}

// HostPort is one published port and its user.
type HostPort struct {
	Port    int
	Node    string
	Purpose string
}

func (h HostPort) String() string { return fmt.Sprintf("%d (%s %s)", h.Port, h.Node, h.Purpose) }

// PatroniNode returns the node with the given name.
func (c Cluster) PatroniNode(name string) (PGNode, bool) {
	for _, p := range c.Patroni {
		if p.Name == name {
			return p, true
		}
	}
	return PGNode{}, false
}
