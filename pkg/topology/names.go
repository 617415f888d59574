package topology

import "fmt"

// prefix is what distinguishes this cluster's Docker names from another's.
func (c Cluster) prefix() string {
	if c.Name == DefaultName {
		return ""
	}
	return c.Name + "-"
}

// ContainerName is the Docker container name of a node (etcd member, Patroni
// node or object store).
func (c Cluster) ContainerName(node string) string { return c.prefix() + node }

// NetworkName is the cluster's bridge network: pgnet for the default cluster.
func (c Cluster) NetworkName() string { return c.prefix() + "pgnet" }

// VolumeName is the data volume of a node. Volumes always carry the cluster
// name, so they never collide with a volume someone else made. A Patroni
// node's volume also carries the data generation once a restore made one.
func (c Cluster) VolumeName(node string) string {
	if _, ok := c.PatroniNode(node); ok && c.DataGeneration > 0 {
		return c.GenerationVolume(node, c.DataGeneration)
	}
	return fmt.Sprintf("pgha-%s-%s-data", c.Name, node)
}

// GenerationVolume is a Patroni node's data volume of generation gen.
func (c Cluster) GenerationVolume(node string, gen int) string {
	if gen == 0 {
		return fmt.Sprintf("pgha-%s-%s-data", c.Name, node)
	}
	return fmt.Sprintf("pgha-%s-%s-data-r%d", c.Name, node, gen)
}

// Object store kinds; the container and its host name are named after the kind.
const (
	StoreMinIO     = "minio"
	StoreVersityGW = "versitygw"
)

// Labels returns the labels of a resource with the given role, for node ("" for
// cluster-wide resources such as the network).
func (c Cluster) Labels(role, node string) map[string]string {
	l := map[string]string{LabelCluster: c.Name, LabelRole: role}
	if node != "" {
		l[LabelNode] = node
	}
	return l
}

// EtcdEndpointsInternal are the client URLs as seen on the cluster network.
func (c Cluster) EtcdEndpointsInternal() []string {
	var eps []string
	for _, e := range c.Etcd {
		eps = append(eps, fmt.Sprintf("%s:%d", e.Name, EtcdClientPort))
	}
	return eps
}

// EtcdInitialCluster is etcd's --initial-cluster value.
func (c Cluster) EtcdInitialCluster() string {
	s := ""
	for i, e := range c.Etcd {
		if i > 0 {
			s += ","
		}
		s += e.Name + "=" + EtcdURL(e.Name, EtcdPeerPort)
	}
	return s
}

// EtcdCommand is the command line of one etcd member: TLS on the client and
// peer ports with the cluster CA's certificate (peers must show one too).
func (c Cluster) EtcdCommand(e EtcdNode) []string {
	return []string{
		"etcd",
		"--name", e.Name,
		"--data-dir", "/var/lib/etcd/data",
		"--listen-client-urls", EtcdURL("0.0.0.0", EtcdClientPort),
		"--advertise-client-urls", EtcdURL(e.Name, EtcdClientPort),
		"--listen-peer-urls", EtcdURL("0.0.0.0", EtcdPeerPort),
		"--initial-advertise-peer-urls", EtcdURL(e.Name, EtcdPeerPort),
		"--cert-file", EtcdCertFile, "--key-file", EtcdKeyFile,
		"--peer-cert-file", EtcdCertFile, "--peer-key-file", EtcdKeyFile,
		"--peer-trusted-ca-file", EtcdCAFile, "--peer-client-cert-auth",
		"--initial-cluster", c.EtcdInitialCluster(),
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "pgha-" + c.Name,
	}
}

// KeyPrefix is where Patroni keeps the cluster's state in etcd.
func (c Cluster) KeyPrefix() string {
	ns := c.Namespace
	if ns[len(ns)-1] != '/' {
		ns += "/"
	}
	return ns + c.Scope + "/"
}

// EtcdNames are the etcd members' names.
func (c Cluster) EtcdNames() []string {
	var out []string
	for _, e := range c.Etcd {
		out = append(out, e.Name)
	}
	return out
}

// PatroniNames are the Patroni nodes' names.
func (c Cluster) PatroniNames() []string {
	var out []string
	for _, n := range c.Patroni {
		out = append(out, n.Name)
	}
	return out
}

// ContainerNames are the container names of nodes.
func (c Cluster) ContainerNames(nodes []string) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, c.ContainerName(n))
	}
	return out
}
