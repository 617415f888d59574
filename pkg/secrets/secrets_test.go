package secrets

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureMakesPrivateRandomSecretsOnce(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "c1")}
	hosts := []string{"versitygw", "c1-versitygw", "localhost", "127.0.0.1"}
	a, err := s.Ensure(hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{a.SuperuserPassword, a.ReplicationPassword, a.RESTPassword, a.S3SecretKey} {
		if len(v) < 24 || strings.Contains(strings.ToLower(v), "password") {
			t.Errorf("weak secret %q", v)
		}
	}
	if a.SuperuserPassword == a.ReplicationPassword {
		t.Error("two secrets are equal")
	}
	for name, want := range map[string]os.FileMode{"secrets.json": 0o600, ServerKeyFile: 0o600, caKeyFile: 0o600, ".": 0o700} {
		info, err := os.Stat(filepath.Join(s.Dir, name))
		if err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", name, info.Mode().Perm(), err, want)
		}
	}
	b, err := s.Ensure(hosts)
	if err != nil || b != a {
		t.Errorf("second Ensure changed the secrets (%v)", err)
	}

	// The certificate names every host and chains to the CA.
	data, _ := os.ReadFile(filepath.Join(s.Dir, ServerCertFile))
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := s.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: h}); err != nil {
			t.Errorf("certificate for %s: %v", h, err)
		}
	}
	if err := s.Remove(); err != nil || s.Exists() {
		t.Errorf("Remove: %v, exists %v", err, s.Exists())
	}
}
