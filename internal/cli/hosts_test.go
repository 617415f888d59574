package cli

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/pgha/pgha/pkg/hosts"
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
