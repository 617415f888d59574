package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/pgha/pgha/pkg/faults"
)

// Bad failover-test flags are usage errors (exit 2) before the engine is
// asked anything.
func TestFailoverTestUsage(t *testing.T) {
	t.Setenv("PGHA_STATE_DIR", t.TempDir())
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--fault", "meteor"}, "unknown fault"},
		{[]string{"--fault", "etcd-quorum", "--target", "patroni1"}, "acts on etcd-majority"},
		{[]string{"--fault", "kill", "--rounds", "3"}, "go with --matrix"},
		{[]string{"--matrix", "--fault", "kill"}, "use --faults"},
		{[]string{"--matrix", "--faults", "kill,meteor"}, "unknown fault"},
		{[]string{"--matrix", "--rounds", "0"}, "at least 1"},
		{[]string{"--matrix", "--sync", "sometimes"}, "--sync"},
		{[]string{"--fault", "kill", "--profile", "turbo"}, "--profile"},
		{[]string{"--fault", "kill", "--report", "out.png"}, ".html"},
	} {
		a, _, errb := newTestApp()
		code := a.run(context.Background(), append([]string{"failover-test"}, c.args...))
		if code != exitUsage || !strings.Contains(errb.String(), c.says) {
			t.Errorf("%v: exit %d, stderr %q (want %q)", c.args, code, errb, c.says)
		}
	}
}

// --help lists every fault of the registry.
func TestFailoverTestHelpListsEveryFault(t *testing.T) {
	a, out, _ := newTestApp()
	a.run(context.Background(), []string{"failover-test", "--help"})
	for _, n := range faults.Names() {
		if !strings.Contains(out.String(), "  "+n+" ") {
			t.Errorf("help lacks %s", n)
		}
	}
	for _, flag := range []string{"--matrix", "--rounds", "--sync", "--report", "--faults", "--profile"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("help lacks %s", flag)
		}
	}
}
