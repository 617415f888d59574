// Package clients talks to a running cluster's services from where pgha
// runs: etcd (clientv3), Patroni's REST API, PostgreSQL (pgx) and the object
// store (S3). It is used by the lifecycle's readiness waits, by the checks,
// by day-2 operations and by the failover tests alike. It knows nothing of
// the engine: Access says at which address the published ports are.
package clients

import (
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// Credentials are what pgha logs in with.
type Credentials struct {
	SuperuserPassword string
	RESTPassword      string
	S3AccessKey       string
	S3SecretKey       string
	// EtcdUser and EtcdPassword log in to etcd (pgha's own user).
	EtcdUser     string
	EtcdPassword string
	// CA signed the object store's and etcd's certificates.
	CA *x509.CertPool
	// CAFile is the CA's path on this machine (for AWS_CA_BUNDLE).
	CAFile string
}

// CredentialsFrom reads a cluster's credentials from its secret store.
func CredentialsFrom(store secrets.Store) (Credentials, error) {
	sec, err := store.Load()
	if err != nil {
		return Credentials{}, fmt.Errorf("reading the secrets of cluster %s from %s: %w (`pgha up` makes them, for the user who runs it)", store.Cluster, store.Dir, err)
	}
	ca, err := store.CertPool()
	if err != nil {
		return Credentials{}, fmt.Errorf("reading the CA of cluster %s: %w", store.Cluster, err)
	}
	return FromSecrets(sec, ca, store.CAPath()), nil
}

// FromSecrets makes Credentials of loaded secrets.
func FromSecrets(sec secrets.Secrets, ca *x509.CertPool, caFile string) Credentials {
	return Credentials{SuperuserPassword: sec.SuperuserPassword, RESTPassword: sec.RESTPassword,
		S3AccessKey: sec.S3AccessKey, S3SecretKey: sec.S3SecretKey, CA: ca, CAFile: caFile,
		EtcdUser: topology.EtcdPGHAUser, EtcdPassword: sec.EtcdPGHAPassword}
}

// REST is the basic-auth login for Patroni's unsafe endpoints.
func (c Credentials) REST() RESTAuth {
	return RESTAuth{User: topology.RESTUser, Password: c.RESTPassword}
}

// Access is how a running cluster's services are reached from here: its
// topology (the ports), the address at which the engine's published ports
// are reached (127.0.0.1 for a local engine), and the credentials.
type Access struct {
	Topo  topology.Cluster
	Host  string
	Creds Credentials
	// PortHosts: where a port is published elsewhere than Host (the nodes
	// of a real swarm each publish their members' ports).
	PortHosts map[int]string
}

// Addr is host:port of a published port.
func (a Access) Addr(port int) string {
	host := a.Host
	if h := a.PortHosts[port]; h != "" {
		host = h
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// EtcdEndpoints are the members' client URLs through their published ports.
func (a Access) EtcdEndpoints() []string {
	var eps []string
	for _, e := range a.Topo.Etcd {
		eps = append(eps, a.EtcdEndpoint(e))
	}
	return eps
}

// EtcdEndpoint is one member's client URL through its published port.
func (a Access) EtcdEndpoint(e topology.EtcdNode) string { return "https://" + a.Addr(e.ClientPort) }

// RESTAddr is a Patroni node's REST API address ("" for an unknown node).
func (a Access) RESTAddr(node string) string {
	n, ok := a.Topo.PatroniNode(node)
	if !ok {
		return ""
	}
	return a.Addr(n.RESTPort)
}

// PGAddr is a Patroni node's PostgreSQL address.
func (a Access) PGAddr(node string) string {
	n, _ := a.Topo.PatroniNode(node)
	return a.Addr(n.PGPort)
}

// S3Addr is the object store's S3 API address.
func (a Access) S3Addr() string { return a.Addr(a.Topo.ObjectStore.APIPort) }

// ConnString is a libpq URL to one node as the superuser.
func (a Access) ConnString(node string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable&connect_timeout=3&application_name=pgha",
		topology.SuperUser, a.Creds.SuperuserPassword, a.PGAddr(node))
}

// MultiHostURL is a libpq URL listing every node, with
// target_session_attrs=read-write: it always reaches the primary. params are
// added to the query ("connect_timeout=1").
func (a Access) MultiHostURL(params ...string) string {
	var hosts []string
	for _, n := range a.Topo.Patroni {
		hosts = append(hosts, a.Addr(n.PGPort))
	}
	q := append([]string{"target_session_attrs=read-write"}, params...)
	return fmt.Sprintf("postgres://%s:%s@%s/postgres?%s", topology.SuperUser, a.Creds.SuperuserPassword, strings.Join(hosts, ","), strings.Join(q, "&"))
}
