package cli

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
)

func newTestApp() (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &app{stdout: &out, stderr: &errb}, &out, &errb
}

func TestPlainTableIsTabSeparated(t *testing.T) {
	a, out, _ := newTestApp()
	a.printTable([]string{"A", "B"}, [][]string{{"1", "two words"}, {"3", ""}})
	if got, want := out.String(), "A\tB\n1\ttwo words\n3\t\n"; got != want {
		t.Errorf("table = %q, want %q", got, want)
	}
}

func TestShellQuoteSurvivesTheShell(t *testing.T) {
	for _, v := range []string{"plain", "it's", `a"b$c\d`, "sp ace;rm -rf"} {
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(v)).Output()
		if err != nil || string(out) != v {
			t.Errorf("%q came back as %q (%v)", v, out, err)
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"status", "--bogus"}, {"status", "-o", "yaml"}, {"no-such-command"},
		{"backup", "--type", "differential"}, {"restore", "--latest", "--to-lsn", "0/1", "--yes"}, {"restore", "--yes"},
		{"restore", "--to-time", "yesterday", "--yes"}, {"restore", "--to-lsn", "5002118", "--yes"}, {"restore", "--latest"}} {
		a, _, errb := newTestApp()
		code := a.run(context.Background(), args)
		if code != exitUsage && !(args[0] == "no-such-command" && code == exitError) {
			t.Errorf("%v: exit %d, stderr %s", args, code, errb)
		}
		if !strings.Contains(errb.String(), "error:") {
			t.Errorf("%v: no error message: %q", args, errb)
		}
	}
}

func TestVersion(t *testing.T) {
	a, out, _ := newTestApp()
	if code := a.run(context.Background(), []string{"version"}); code != 0 || out.String() != "pgha dev\n" {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

// A hostile --name is refused as bad usage on every command, before the
// engine is asked or the state directory is touched.
func TestHostileNamesAreUsageErrors(t *testing.T) {
	t.Setenv("PGHA_STATE_DIR", t.TempDir())
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock") // reaching the engine would fail differently
	for _, cmd := range [][]string{{"up"}, {"down", "-v"}, {"status"}, {"verify"}, {"env"}, {"inspect", "cluster"}, {"inspect", "etcd", "keys"},
		{"failover-test"}, {"switchover"}, {"backup"}, {"backup", "list"}, {"restore", "--latest", "--yes"}} {
		for _, name := range []string{"..", "../../etc", "a/b", "x\ny", "UPPER", ""} {
			a, _, errb := newTestApp()
			code := a.run(context.Background(), append(cmd, "--name", name))
			if code != exitUsage || !strings.Contains(errb.String(), "cluster name") || strings.Contains(errb.String(), "Docker engine") {
				t.Errorf("%v --name %q: exit %d, %s", cmd, name, code, errb)
			}
		}
	}
}
