package clients

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgha/pgha/pkg/secrets"
)

// The guard's login files: a CA that is no certificate, or a credentials
// file without "user:password", is refused before any connection.
func TestEtcdFromFilesRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	store := secrets.Store{Cluster: "t", Dir: dir}
	if _, err := store.Ensure([]string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, noColon, notCA := store.CAPath(), write("user1", "guardonly\n"), write("bad.crt", "not a certificate")
	eps := []string{"https://127.0.0.1:1"}
	if _, err := EtcdFromFiles(eps, good, noColon); err == nil || !strings.Contains(err.Error(), "user:password") {
		t.Errorf("a login without a password: %v", err)
	}
	if _, err := EtcdFromFiles(eps, notCA, write("user2", "guard:pw")); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
	if _, err := EtcdFromFiles(eps, good, filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing credentials file was accepted")
	}
}
