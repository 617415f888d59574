package ops

import (
	"regexp"
	"sort"
	"strings"

	"github.com/pgha/pgha/pkg/secrets"
)

// Redacted replaces every secret in a diagnostics report.
const Redacted = "[REDACTED]"

// Redactor removes secrets from text: every generated password and key of
// the cluster wherever it appears, the values of environment variables whose
// names say PASSWORD, SECRET or KEY, and libpq password= settings.
type Redactor struct {
	values []string
	// replacer replaces the known values, longest first.
	replacer *strings.Replacer
}

// NewRedactor knows the cluster's generated secrets.
func NewRedactor(sec secrets.Secrets, extra ...string) *Redactor {
	vals := append([]string{sec.SuperuserPassword, sec.ReplicationPassword, sec.RESTPassword, sec.S3AccessKey, sec.S3SecretKey}, extra...)
	var keep []string
	for _, v := range vals {
		// A value too short would blank out ordinary words.
		if len(v) >= 6 {
			keep = append(keep, v)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return len(keep[i]) > len(keep[j]) })
	var pairs []string
	for _, v := range keep {
		pairs = append(pairs, v, Redacted)
	}
	return &Redactor{values: keep, replacer: strings.NewReplacer(pairs...)}
}

// secretEnv matches NAME=value where NAME names a secret, in env lists,
// inspect output ("NAME=value" strings) and logs. Upper case only, as
// environment variables are: password_encryption=scram-sha-256 is no secret.
var secretEnv = regexp.MustCompile(`\b([A-Z0-9_]*(?:PASSWORD|SECRET|KEY)[A-Z0-9_]*)=([^\s"',]+)`)

// secretConninfo matches password=... in libpq connection strings and
// password: ... in YAML.
var secretConninfo = regexp.MustCompile(`(?i)(password\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s"',}]+)`)

// secretURL matches the password in user:password@host URLs.
var secretURL = regexp.MustCompile(`(://[^:/@\s]+:)([^@\s/]+)@`)

// String redacts a text.
func (r *Redactor) String(s string) string {
	s = r.replacer.Replace(s)
	s = secretEnv.ReplaceAllString(s, "${1}="+Redacted)
	s = secretConninfo.ReplaceAllString(s, "${1}"+Redacted)
	return secretURL.ReplaceAllString(s, "${1}"+Redacted+"@")
}

// Bytes redacts a file's content.
func (r *Redactor) Bytes(b []byte) []byte { return []byte(r.String(string(b))) }

// Leaks lists the known secret values found in text (for tests and a last
// check of the archive).
func (r *Redactor) Leaks(s string) []string {
	var out []string
	for _, v := range r.values {
		if strings.Contains(s, v) {
			out = append(out, v)
		}
	}
	return out
}
