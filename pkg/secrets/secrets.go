// Package secrets owns a cluster's credentials and TLS material: random
// passwords and a private CA made on first use, kept in a per-user state
// directory that only the user can read.
package secrets

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"

	"github.com/pgha/pgha/pkg/topology"
)

// Secrets are one cluster's credentials.
type Secrets struct {
	SuperuserPassword   string `json:"superuserPassword"`
	ReplicationPassword string `json:"replicationPassword"`
	RESTPassword        string `json:"restPassword"`
	S3AccessKey         string `json:"s3AccessKey"`
	S3SecretKey         string `json:"s3SecretKey"`
	// pgBackRest's own S3 account (not the store's root account).
	PgBackRestS3AccessKey string `json:"pgbackrestS3AccessKey"`
	PgBackRestS3SecretKey string `json:"pgbackrestS3SecretKey"`
	// etcd users: root (enables auth, makes users), patroni (the scope's
	// prefix), pgha (pgha's checks and tools), guard (the leader key).
	EtcdRootPassword    string `json:"etcdRootPassword"`
	EtcdPatroniPassword string `json:"etcdPatroniPassword"`
	EtcdPGHAPassword    string `json:"etcdPghaPassword"`
	EtcdGuardPassword   string `json:"etcdGuardPassword"`
}

// Values are every secret value, for tests that look for leaks.
func (s Secrets) Values() []string {
	return []string{s.SuperuserPassword, s.ReplicationPassword, s.RESTPassword, s.S3AccessKey, s.S3SecretKey,
		s.PgBackRestS3AccessKey, s.PgBackRestS3SecretKey,
		s.EtcdRootPassword, s.EtcdPatroniPassword, s.EtcdPGHAPassword, s.EtcdGuardPassword}
}

// fill makes the secrets that are missing (all of them for a new cluster;
// the newer ones for a cluster made by an older pgha) and says whether it
// made any.
func (s *Secrets) fill() bool {
	made := false
	for _, f := range []struct {
		v      *string
		prefix string
		n      int
	}{
		{&s.SuperuserPassword, "", 24}, {&s.ReplicationPassword, "", 24}, {&s.RESTPassword, "", 24},
		{&s.S3AccessKey, "pgha", 16}, {&s.S3SecretKey, "", 32},
		{&s.PgBackRestS3AccessKey, "pgbackrest", 16}, {&s.PgBackRestS3SecretKey, "", 32},
		{&s.EtcdRootPassword, "", 24}, {&s.EtcdPatroniPassword, "", 24}, {&s.EtcdPGHAPassword, "", 24}, {&s.EtcdGuardPassword, "", 24},
	} {
		if *f.v == "" {
			*f.v, made = f.prefix+Random(f.n), true
		}
	}
	return made
}

// Store is the state directory of one cluster.
type Store struct {
	Cluster string
	Dir     string
}

// StateRoot is where pgha keeps per-cluster state: $PGHA_STATE_DIR, else
// $XDG_STATE_HOME/pgha, else ~/.local/state/pgha.
func StateRoot() (string, error) {
	if d := os.Getenv("PGHA_STATE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "pgha"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the state directory: %w (set PGHA_STATE_DIR)", err)
	}
	return filepath.Join(home, ".local", "state", "pgha"), nil
}

// For returns the store of a cluster. The name is checked with the cluster
// name rule, and the directory must lie inside the state root: no name can
// make pgha read, write or remove anything else.
func For(cluster string) (Store, error) {
	if err := topology.ValidName(cluster); err != nil {
		return Store{}, err
	}
	root, err := StateRoot()
	if err != nil {
		return Store{}, err
	}
	dir := filepath.Join(root, cluster)
	if rel, err := filepath.Rel(root, dir); err != nil || rel != cluster {
		return Store{}, fmt.Errorf("cluster %q: its state directory %s would lie outside %s", cluster, dir, root)
	}
	return Store{Cluster: cluster, Dir: dir}, nil
}

func (s Store) path(name string) string { return filepath.Join(s.Dir, name) }

// Exists says whether the cluster's secrets were made.
func (s Store) Exists() bool {
	_, err := os.Stat(s.path("secrets.json"))
	return err == nil
}

// Load reads the secrets; a missing file is ErrNotExist.
func (s Store) Load() (Secrets, error) {
	var sec Secrets
	data, err := os.ReadFile(s.path("secrets.json"))
	if err != nil {
		return sec, err
	}
	if err := json.Unmarshal(data, &sec); err != nil {
		return sec, fmt.Errorf("%s is damaged: %w", s.path("secrets.json"), err)
	}
	return sec, nil
}

// Ensure loads the secrets and TLS material, making any that are missing.
// The object store's certificate is issued for hosts (its names on the
// cluster network and on the host).
func (s Store) Ensure(hosts []string) (Secrets, error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Secrets{}, fmt.Errorf("creating state directory: %w", err)
	}
	if err := os.Chmod(s.Dir, 0o700); err != nil {
		return Secrets{}, err
	}
	sec, err := s.Load()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Secrets{}, err
	}
	if sec.fill() {
		data, _ := json.MarshalIndent(sec, "", "  ")
		if err := writeFile(s.path("secrets.json"), data, 0o600); err != nil {
			return Secrets{}, err
		}
	}
	if err := s.ensureTLS(hosts); err != nil {
		return Secrets{}, err
	}
	return sec, nil
}

// Remove deletes the cluster's state directory.
func (s Store) Remove() error { return os.RemoveAll(s.Dir) }

const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// Random returns n characters from crypto/rand, safe in URLs, shells and YAML.
func Random(n int) string {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux or macOS
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// writeFile writes atomically with the given mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
