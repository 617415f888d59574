package topology

import (
	"fmt"
	"strings"
	"time"
)

// pgBackRest: every Patroni node archives WAL to, and restores from, a
// repository in the cluster's object store. The settings reach pgBackRest as
// PGBACKREST_* environment variables of the Patroni containers (PostgreSQL
// inherits them); the S3 keys are pgBackRest's own account, in a
// configuration file copied in with mode 0600 (PgBackRestConfig).
const (
	// ObjectStoreAlias is the object store's host name on the cluster network,
	// whatever its kind; its TLS certificate names it.
	ObjectStoreAlias = "objectstore"
	// S3Region is the region pgha's S3 clients sign requests for.
	S3Region = "us-east-1"
	// PgBackRestCAFile is where Patroni containers find the cluster's CA,
	// which signed the object store's certificate.
	PgBackRestCAFile = "/etc/pgha/ca.crt"
	// PgBackRestRetentionFull is how many full backups the repository keeps.
	PgBackRestRetentionFull = 2
)

// Stanza is the pgBackRest stanza of the cluster: its Patroni scope.
func (c Cluster) Stanza() string { return c.Scope }

// RepoPath is the repository's path inside the bucket.
func (c Cluster) RepoPath() string { return "/" + c.Scope }

// PgBackRestEnv is pgBackRest's configuration for a Patroni container, without
// the S3 keys.
func (c Cluster) PgBackRestEnv() []string {
	return []string{
		// The S3 keys are in this file (PgBackRestConfig), not in the environment.
		"PGBACKREST_CONFIG=" + PgBackRestConfigFile,
		"PGBACKREST_STANZA=" + c.Stanza(),
		"PGBACKREST_PG1_PATH=" + PatroniDataDir,
		"PGBACKREST_REPO1_TYPE=s3",
		"PGBACKREST_REPO1_PATH=" + c.RepoPath(),
		"PGBACKREST_REPO1_S3_ENDPOINT=" + ObjectStoreAlias,
		fmt.Sprintf("PGBACKREST_REPO1_STORAGE_PORT=%d", S3APIPort),
		"PGBACKREST_REPO1_S3_BUCKET=" + c.ObjectStore.Bucket,
		"PGBACKREST_REPO1_S3_REGION=" + S3Region,
		// versitygw and MinIO serve buckets as paths, not as host names.
		"PGBACKREST_REPO1_S3_URI_STYLE=path",
		"PGBACKREST_REPO1_STORAGE_CA_FILE=" + PgBackRestCAFile,
		fmt.Sprintf("PGBACKREST_REPO1_RETENTION_FULL=%d", PgBackRestRetentionFull),
		// lz4 costs a fraction of gzip's CPU on a 2-core laptop.
		"PGBACKREST_COMPRESS_TYPE=lz4",
		"PGBACKREST_PROCESS_MAX=2",
		// A backup starts with an immediate checkpoint, not a spread one.
		"PGBACKREST_START_FAST=y",
		// Errors reach PostgreSQL's log (archive_command) or pgha (exec) on stderr.
		"PGBACKREST_LOG_LEVEL_FILE=off",
		"PGBACKREST_LOG_LEVEL_STDERR=warn",
	}
}

// Commands PostgreSQL and Patroni run; the stanza and repository come from the
// environment.
const (
	// pgha-pgbackrest-push is pgbackrest archive-push that lets a stale copy
	// of an old timeline's segment go (images/patroni/archive-push.sh). Its
	// name must contain "pgbackrest": pgbackrest backup checks that.
	archiveCommand = "pgha-pgbackrest-push %p"
	// pgha-pgbackrest-get is pgbackrest archive-get that gives up at once
	// on a store whose name does not resolve, and after 1 s without a byte
	// on one that does not answer (images/patroni/archive-get.sh): a
	// promotion asks the archive for history files, and against a store
	// gone with its host pgBackRest's defaults held it for 6 minutes a call.
	restoreCommand = `pgha-pgbackrest-get %f "%p"`
	// A new replica is restored from the newest backup and the WAL archive
	// when there is one, which spares the primary a base backup; with none
	// the command fails at once and Patroni falls back to pg_basebackup.
	replicaRestoreCommand = "pgbackrest --delta --type=standby restore"
	// postBootstrapCommand runs once the new primary accepts connections and
	// before it takes the leader key, so before any replica can clone it: a
	// base backup closes a WAL segment, and archiving it needs the stanza.
	// Patroni appends a connection string ($0 here). A failure must not fail
	// the bootstrap: pgha up makes the stanza again when it is missing.
	postBootstrapCommand = `sh -c 'pgbackrest stanza-create || true'`
)

// RestoreTarget is a point-in-time restore: the cluster's bootstrap leader is
// bootstrapped by pgBackRest instead of initdb, and recovers to the target.
type RestoreTarget struct {
	// Time, LSN or neither (the end of the archived WAL).
	Time time.Time
	LSN  string
}

// RestoreCommand is the pgBackRest restore that bootstraps the cluster.
func (r RestoreTarget) RestoreCommand() string {
	cmd := []string{"pgbackrest", "--delta", "restore", "--target-action=promote"}
	switch {
	case !r.Time.IsZero():
		cmd = append(cmd, "--type=time", "'--target="+r.Time.UTC().Format("2006-01-02 15:04:05.999999-07")+"'")
	case r.LSN != "":
		cmd = append(cmd, "--type=lsn", "--target="+r.LSN)
	default:
		cmd = cmd[:3] // the end of the archive: no target, promotion follows
	}
	return strings.Join(cmd, " ")
}

// String says what the target is, for people.
func (r RestoreTarget) String() string {
	switch {
	case !r.Time.IsZero():
		return "time " + r.Time.Format(time.RFC3339Nano)
	case r.LSN != "":
		return "LSN " + r.LSN
	}
	return "the end of the archived WAL"
}
