package topology

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// etcd is served over TLS (client and peer ports) with certificates from the
// cluster's CA, and with authentication on: every client logs in as one of
// these users. Their passwords are per-cluster secrets.
const (
	// EtcdRootUser enables authentication and makes the other users.
	EtcdRootUser = "root"
	// EtcdPatroniUser is Patroni's: read and write under the scope's prefix only.
	EtcdPatroniUser = "patroni"
	// EtcdPGHAUser is pgha's checks, inspect and failover tooling.
	EtcdPGHAUser = "pgha"
	// EtcdGuardUser is the guard's: it reads and compare-and-deletes the leader key only.
	EtcdGuardUser = "guard"
	// VerifyKeyPrefix is where `pgha verify` writes its test key.
	VerifyKeyPrefix = "/pgha/verify/"
)

// Files inside the etcd image (images/etcd): copied in before each start,
// owned by the etcd user (EtcdUID), the key and the credentials mode 0600.
const (
	EtcdTLSDir   = "/etc/pgha/etcd"
	EtcdCAFile   = EtcdTLSDir + "/ca.crt"
	EtcdCertFile = EtcdTLSDir + "/server.crt"
	EtcdKeyFile  = EtcdTLSDir + "/server.key"
	// EtcdctlUserFile holds "root:<password>"; the image's etcdctl wrapper
	// reads it, so `docker exec etcd1 etcdctl ...` works as written without
	// a password in the container's environment.
	EtcdctlUserFile = EtcdTLSDir + "/etcdctl.user"
	// EtcdUID owns etcd's files (fixed in images/etcd).
	EtcdUID = 10002
)

// Files of the Patroni image (images/patroni), owned by postgres (PostgresUID).
const (
	// PatroniConfigFile is the whole patroni.yml, secrets included, mode 0600.
	PatroniConfigFile = "/etc/patroni/patroni.yml"
	// PgBackRestConfigFile holds pgBackRest's own S3 keys, mode 0600; the
	// rest of its settings are environment variables (PgBackRestEnv).
	PgBackRestConfigFile = "/etc/pgha/pgbackrest/pgbackrest.conf"
	// PostgresUID owns PostgreSQL's files (fixed in images/patroni).
	PostgresUID = 999
)

// Files of the guard: its etcd credentials and the CA, on a volume of its own
// (its root filesystem is read-only).
const (
	GuardSecretsDir = "/etc/pgha/guard"
	GuardCAFile     = GuardSecretsDir + "/ca.crt"
	// GuardEtcdUserFile holds "guard:<password>".
	GuardEtcdUserFile = GuardSecretsDir + "/etcd.user"
)

// ObjectStoreRootFile is the object store's root account as ROOT_ACCESS_KEY=
// and ROOT_SECRET_KEY= lines (mode 0600, read by the image's entrypoint).
const ObjectStoreRootFile = "/etc/pgha/secrets/root.env"

// EtcdPermission is one key range an etcd role may use.
type EtcdPermission struct {
	Key string
	// Prefix: every key that starts with Key; else Key alone.
	Prefix    bool
	ReadWrite bool
}

// EtcdRole is a role of the cluster's etcd and the user that has it.
type EtcdRole struct {
	Name        string
	Permissions []EtcdPermission
}

// EtcdRoles are the roles pgha makes (the users have the same names).
func (c Cluster) EtcdRoles() []EtcdRole {
	scope := c.KeyPrefix()
	return []EtcdRole{
		{Name: EtcdPatroniUser, Permissions: []EtcdPermission{{Key: scope, Prefix: true, ReadWrite: true}}},
		{Name: EtcdPGHAUser, Permissions: []EtcdPermission{
			{Key: scope, Prefix: true, ReadWrite: true},
			// The guide's `etcdctl get /service/pg-cluster --prefix` asks for
			// the range without the trailing slash: read it too.
			{Key: strings.TrimSuffix(scope, "/"), Prefix: true},
			{Key: VerifyKeyPrefix, Prefix: true, ReadWrite: true},
		}},
		{Name: EtcdGuardUser, Permissions: []EtcdPermission{{Key: scope + "leader", ReadWrite: true}}},
	}
}

// EtcdURL is a member's client URL on the cluster network.
func EtcdURL(host string, port int) string { return fmt.Sprintf("https://%s:%d", host, port) }

// PatroniSecrets are what a node's patroni.yml carries besides PatroniConfig.
type PatroniSecrets struct {
	SuperuserPassword, ReplicationPassword, RESTPassword, EtcdPassword string
}

// PatroniConfigWithSecrets is the patroni.yml pgha copies into a node before
// it starts: PatroniConfig with the passwords added, so none has to sit in
// the container's environment.
func (c Cluster) PatroniConfigWithSecrets(n PGNode, s PatroniSecrets) string {
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(c.PatroniConfig(n)), &cfg); err != nil {
		panic(err) // PatroniConfig marshalled it
	}
	cfg["etcd3"].(map[string]any)["password"] = s.EtcdPassword
	cfg["restapi"].(map[string]any)["authentication"] = map[string]any{"username": RESTUser, "password": s.RESTPassword}
	auth := cfg["postgresql"].(map[string]any)["authentication"].(map[string]any)
	auth["superuser"] = map[string]any{"username": SuperUser, "password": s.SuperuserPassword}
	auth["replication"] = map[string]any{"username": ReplicationUser, "password": s.ReplicationPassword}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// PgBackRestConfig is pgBackRest's configuration file: its own S3 account.
func PgBackRestConfig(accessKey, secretKey string) string {
	return fmt.Sprintf("[global]\nrepo1-s3-key=%s\nrepo1-s3-key-secret=%s\n", accessKey, secretKey)
}
