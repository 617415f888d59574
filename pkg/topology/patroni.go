package topology

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Paths inside the Patroni image (images/patroni).
const (
	PatroniDataMount = "/var/lib/postgresql/pgha"
	PatroniDataDir   = PatroniDataMount + "/data"
	PostgresBinDir   = "/usr/lib/postgresql/17/bin"
)

// Database users. Their passwords are per-cluster secrets and reach Patroni
// in its configuration file, copied in with mode 0600 before each start.
const (
	SuperUser       = "postgres"
	ReplicationUser = "replicator"
	RESTUser        = "patroni"
)

// Timing is Patroni's failover timing, in seconds.
type Timing struct {
	TTL          int `json:"ttl"`
	LoopWait     int `json:"loopWait"`
	RetryTimeout int `json:"retryTimeout"`
}

// Failover timing profiles.
const (
	// ProfileSeed is Patroni's defaults, as in the guide.
	ProfileSeed = "seed"
	// ProfileFast is the fastest Patroni accepts (it refuses a ttl under 20),
	// keeping loop_wait + 2*retry_timeout <= ttl, and a retry_timeout that
	// rides out a busy laptop without demoting the primary.
	ProfileFast = "fast"
	// DefaultProfile: a lab wants to see failovers happen quickly, and a
	// 1 s loop also lets replicas stream seconds sooner after up.
	DefaultProfile = ProfileFast
)

// Profiles maps each profile to its timing.
var Profiles = map[string]Timing{
	ProfileSeed: {TTL: 30, LoopWait: 10, RetryTimeout: 10},
	ProfileFast: {TTL: 20, LoopWait: 1, RetryTimeout: 5},
}

// Synchronous replication modes.
const (
	SyncOff    = "off"
	SyncOn     = "on"
	SyncStrict = "strict"
)

// Timing returns the cluster's failover timing.
func (c Cluster) Timing() Timing { return Profiles[c.Profile] }

// LoopWait is Patroni's loop_wait, in seconds.
func (c Cluster) LoopWait() int { return c.Timing().LoopWait }

// PatroniConfig is the patroni.yml of one node, without secrets;
// PatroniConfigWithSecrets adds them for the file pgha copies in.
func (c Cluster) PatroniConfig(n PGNode) string {
	cfg := map[string]any{
		"scope":     c.Scope,
		"namespace": c.Namespace,
		"name":      n.Name,
		"restapi": map[string]any{
			"listen":          fmt.Sprintf("0.0.0.0:%d", PatroniAPIPort),
			"connect_address": fmt.Sprintf("%s:%d", n.Name, PatroniAPIPort),
		},
		"etcd3": map[string]any{"hosts": c.EtcdEndpointsInternal(), "protocol": "https", "cacert": PgBackRestCAFile, "username": EtcdPatroniUser},
		"bootstrap": map[string]any{
			"dcs": map[string]any{
				"ttl":                     c.Timing().TTL,
				"loop_wait":               c.Timing().LoopWait,
				"retry_timeout":           c.Timing().RetryTimeout,
				"synchronous_mode":        c.SynchronousMode != SyncOff,
				"synchronous_mode_strict": c.SynchronousMode == SyncStrict,
				"maximum_lag_on_failover": 1048576,
				"postgresql": map[string]any{
					"use_pg_rewind": true,
					"use_slots":     true,
					"parameters": map[string]any{
						"password_encryption":   "scram-sha-256",
						"wal_level":             "replica",
						"hot_standby":           "on",
						"max_wal_senders":       10,
						"max_replication_slots": 10,
						"wal_log_hints":         "on",
						"wal_keep_size":         "128MB",
						// A replica retries streaming this often while its slot is missing.
						"wal_retrieve_retry_interval": "1s",
						// After a crash, and on a new replica's first start (a base backup
						// starts as a crash), PostgreSQL syncs the data directory: one
						// syncfs instead of an fsync per file.
						"recovery_init_sync_method": "syncfs",
						// Every segment goes to the object store from the first minute.
						"archive_mode":    "on",
						"archive_command": archiveCommand,
					},
				},
			},
			// initdb and pg_basebackup make the data durable with one syncfs
			// of the volume instead of an fsync per file (PostgreSQL 17).
			"initdb":         []any{map[string]any{"encoding": "UTF8"}, "data-checksums", map[string]any{"sync-method": "syncfs"}},
			"post_bootstrap": postBootstrapCommand,
		},
		"postgresql": map[string]any{
			"listen":          fmt.Sprintf("0.0.0.0:%d", PostgresPort),
			"connect_address": fmt.Sprintf("%s:%d", n.Name, PostgresPort),
			"data_dir":        PatroniDataDir,
			"bin_dir":         PostgresBinDir,
			"pgpass":          "/tmp/pgpass",
			"parameters":      map[string]any{"unix_socket_directories": "/var/run/postgresql"},
			// A fast checkpoint lets a new replica's base backup start at once.
			"basebackup":             []any{map[string]any{"checkpoint": "fast"}, map[string]any{"sync-method": "syncfs"}},
			"create_replica_methods": []string{"pgbackrest", "basebackup"},
			"pgbackrest":             map[string]any{"command": replicaRestoreCommand, "keep_data": true, "no_params": true},
			"recovery_conf":          map[string]any{"restore_command": restoreCommand},
			// A node whose rewind fails, or whose timeline cannot be
			// rewound, is cloned again instead of staying down: a lab heals.
			"remove_data_directory_on_rewind_failure":     true,
			"remove_data_directory_on_diverged_timelines": true,
			"authentication": map[string]any{
				"superuser":   map[string]any{"username": SuperUser},
				"replication": map[string]any{"username": ReplicationUser},
			},
			"pg_hba": []string{
				"local all all trust",
				"host replication " + ReplicationUser + " all scram-sha-256",
				"host all all all scram-sha-256",
			},
		},
	}
	if r := c.Restore; r != nil {
		pg := cfg["postgresql"].(map[string]any)
		if n.Name == c.BootstrapLeader {
			// pgBackRest writes the recovery settings (target, promotion);
			// Patroni starts PostgreSQL on them and waits for the promotion.
			boot := cfg["bootstrap"].(map[string]any)
			boot["method"] = "pgbackrest"
			boot["pgbackrest"] = map[string]any{"command": r.RestoreCommand(), "keep_existing_recovery_conf": true, "no_params": true}
		} else {
			// Replicas clone the restored primary. Restored by pgBackRest,
			// a replica could take a backup or WAL of the abandoned
			// timeline, past the point the primary was restored to.
			pg["create_replica_methods"] = []string{"basebackup"}
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil { // maps of strings, ints and bools always marshal
		panic(err)
	}
	return string(out)
}
