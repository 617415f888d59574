package ops

import (
	"strings"
	"testing"

	"github.com/pgha/pgha/pkg/secrets"
)

func TestRedactor(t *testing.T) {
	sec := secrets.Secrets{SuperuserPassword: "Sup3rSecretPw", ReplicationPassword: "R3plSecretPw", RESTPassword: "RestPw123456",
		S3AccessKey: "pghaAccessKey1", S3SecretKey: "S3SecretKeyValue"}
	r := NewRedactor(sec)
	in := strings.Join([]string{
		`"Env": ["PATRONI_SUPERUSER_PASSWORD=Sup3rSecretPw", "ROOT_SECRET_KEY=S3SecretKeyValue", "MY_API_KEY=abc", "PGBACKREST_REPO1_S3_KEY=pghaAccessKey1"]`,
		`log: connecting as replicator with R3plSecretPw failed`,
		`primary_conninfo = 'host=patroni2 user=replicator password=other1 sslmode=prefer'`,
		`password: "yaml-secret"`,
		`postgres://postgres:urlsecret@127.0.0.1:5432/postgres`,
		`curl -u patroni:RestPw123456 http://x`,
		`wal_level=replica password_encryption=scram-sha-256 max_wal_senders=10`,
	}, "\n")
	out := r.String(in)
	for _, leak := range []string{"Sup3rSecretPw", "R3plSecretPw", "RestPw123456", "pghaAccessKey1", "S3SecretKeyValue", "=abc", "other1", "yaml-secret", "urlsecret"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q survived redaction:\n%s", leak, out)
		}
	}
	for _, keep := range []string{"PATRONI_SUPERUSER_PASSWORD=[REDACTED]", "MY_API_KEY=[REDACTED]", "password=[REDACTED] sslmode=prefer",
		"postgres://postgres:[REDACTED]@127.0.0.1", "wal_level=replica password_encryption=scram-sha-256 max_wal_senders=10", "host=patroni2 user=replicator"} {
		if !strings.Contains(out, keep) {
			t.Errorf("redacted text lacks %q:\n%s", keep, out)
		}
	}
	if leaks := r.Leaks(out); len(leaks) != 0 {
		t.Errorf("Leaks finds %v", leaks)
	}
	if leaks := r.Leaks(in); len(leaks) != 5 {
		t.Errorf("Leaks finds %d of the 5 secrets in the original", len(leaks))
	}
}

func TestRedactorIgnoresEmptySecrets(t *testing.T) {
	r := NewRedactor(secrets.Secrets{})
	if got := r.String("plain text"); got != "plain text" {
		t.Errorf("got %q", got)
	}
}
