package cli

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/pgha/pgha/pkg/hosts"
	"github.com/spf13/cobra"
)

func TestParseHostPorts(t *testing.T) {
	got, err := parseHostPorts([]string{"h1=15435,18008", "3=9000", "h1=2379"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int][]int{1: {15435, 18008, 2379}, 3: {9000}}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"h1", "h1=", "h4=5000", "h0=5000", "x=5000", "h1=5000,abc", "h2=70000", "h2=0"} {
		if _, err := parseHostPorts([]string{bad}, 3); err == nil || !strings.Contains(err.Error(), "--ports") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

// A bad prefix, count or port is a usage error before the engine is asked.
func TestHostsUsageErrors(t *testing.T) {
	t.Setenv("PGHA_STATE_DIR", t.TempDir())
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock") // reaching the engine would fail differently
	for _, args := range [][]string{
		{"hosts", "create", "--prefix", "UPPER"}, {"hosts", "create", "--prefix", "../x"}, {"hosts", "create", "--prefix", "a-"},
		{"hosts", "create", "--prefix", ""}, {"hosts", "create", "0"}, {"hosts", "create", "21"}, {"hosts", "create", "three"},
		{"hosts", "create", "2", "--ports", "h3=5000"}, {"hosts", "delete", "--prefix", "a/b"}, {"hosts", "list", "--prefix", "x\ny"},
		{"hosts", "env", "--prefix", ".."}, {"hosts", "create", "-o", "yaml"},
	} {
		a, _, errb := newTestApp()
		code := a.run(context.Background(), args)
		if code != exitUsage || !strings.Contains(errb.String(), "error:") || strings.Contains(errb.String(), "Docker engine") {
			t.Errorf("%v: exit %d, %s", args, code, errb)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	for _, ok := range []string{"pgha-hosts", "a", "lab2", strings.Repeat("a", 40)} {
		if err := hosts.ValidPrefix(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a_b", "a.b", strings.Repeat("a", 41)} {
		if err := hosts.ValidPrefix(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPrintHostsPlain(t *testing.T) {
	a, out, _ := newTestApp()
	a.printHosts([]hostsView{{Prefix: "lab", Hosts: []hosts.HostStatus{
		{Host: hosts.Host{Name: "h1", Container: "lab-h1", Address: "10.200.0.11", SwarmRole: "manager", Socket: "unix:///s/h1/docker.sock"}, Ready: true, Leader: true},
		{Host: hosts.Host{Name: "h2", Container: "lab-h2", SwarmRole: "worker", Socket: "unix:///s/h2/docker.sock", Ports: []int{15435, 18008}}, Detail: "container exited (pgha hosts create starts it)"},
	}}}, true)
	want := "PREFIX\tHOST\tCONTAINER\tADDRESS\tROLE\tENGINE\tPORTS\tREADY\n" +
		"lab\th1\tlab-h1\t10.200.0.11\tmanager (leader)\tunix:///s/h1/docker.sock\t-\tyes\n" +
		"lab\th2\tlab-h2\t-\tworker\tunix:///s/h2/docker.sock\t15435,18008\tno: container exited (pgha hosts create starts it)\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// hostsPlan parses `pgha hosts create` flags and returns the ports planned.
func hostsPlan(t *testing.T, count int, args ...string) (map[int][]int, error) {
	t.Helper()
	f := &hostsCreateFlags{}
	cmd := &cobra.Command{Use: "create"}
	f.register(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	extra, err := parseHostPorts(f.ports, count)
	if err != nil {
		return nil, err
	}
	return f.portPlan(cmd, count, extra)
}

// By default the hosts publish the seed topology's ports, each on the host
// that runs its member; --port-offset shifts them, -f reads a topology,
// --ports adds, --plan=false leaves only --ports.
func TestHostsCreatePortPlan(t *testing.T) {
	seed := map[int][]int{1: {2379, 5000, 5001, 5435, 7000, 8008, 9000}, 2: {5436, 8010, 22379}, 3: {5437, 8012, 32379}}
	for _, tc := range []struct {
		count int
		args  []string
		want  map[int][]int
	}{
		{3, nil, seed},
		{3, []string{"--name", "other"}, seed},
		{3, []string{"--port-offset", "10", "--ports", "h2=15436"}, map[int][]int{
			1: {2389, 5010, 5011, 5445, 7010, 8018, 9010}, 2: {5446, 8020, 15436, 22389}, 3: {5447, 8022, 32389}}},
		{2, nil, map[int][]int{1: {2379, 5000, 5001, 5435, 5437, 7000, 8008, 8012, 9000, 32379}, 2: {5436, 8010, 22379}}},
		{3, []string{"--plan=false", "--ports", "h1=41000"}, map[int][]int{1: {41000}}},
		{3, []string{"--plan=false"}, map[int][]int{}},
	} {
		got, err := hostsPlan(t, tc.count, tc.args...)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%d %v: %v %v, want %v", tc.count, tc.args, got, err, tc.want)
		}
	}

	got, err := hostsPlan(t, 3, "-f", "../../examples/five-node.yaml")
	want := map[int][]int{1: {2479, 5100, 5101, 5535, 5538, 7100, 8108, 8114, 9100}, 2: {5536, 5539, 8110, 8116, 22479}, 3: {5537, 8112, 32479}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("-f five-node.yaml: %v %v, want %v", got, err, want)
	}

	if _, err := hostsPlan(t, 3, "--plan=false", "--port-offset", "5"); err == nil || !strings.Contains(err.Error(), "--plan=false") {
		t.Errorf("--plan=false with --port-offset: %v", err)
	}
	if _, err := hostsPlan(t, 3, "-f", "missing.yaml"); err == nil {
		t.Error("a missing topology file planned ports")
	}
}
