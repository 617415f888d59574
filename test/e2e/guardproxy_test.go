package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/topology"
)

// The guard is least-privilege: its container has no engine socket, runs as
// nobody, and its API proxy refuses, from inside the guard's container, a
// container create and an inspect (which would show another container's
// environment); what it allows — the cluster's container list — carries none
// of the cluster's secrets. status shows both containers; down removes them.
func TestGuardLeastPrivilege(t *testing.T) {
	parallel(t)
	c := newCluster(t, 1, 2).withoutRouter()
	c.up(t)
	ctx := context.Background()
	guardName, proxyName := c.topo.ContainerName(topology.GuardNode), c.topo.ContainerName(topology.GuardProxyNode)

	info, err := docker.ContainerInspect(ctx, guardName)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range info.Mounts {
		t.Logf("guard mount: %s %s -> %s (rw %v)", m.Type, m.Source, m.Destination, m.RW)
		// Writable: only its own small volume, which receives its etcd login
		// (the engine copies nothing into a read-only mount).
		if strings.Contains(m.Source, "docker.sock") || strings.Contains(m.Destination, "docker.sock") || (m.RW && m.Destination != topology.GuardSecretsDir) {
			t.Errorf("the guard mounts %s at %s (rw %v)", m.Source, m.Destination, m.RW)
		}
	}
	if info.Config.User != "65534:65534" || len(info.HostConfig.Binds) != 0 {
		t.Errorf("guard user %q, binds %v", info.Config.User, info.HostConfig.Binds)
	}

	// Run the guard's own binary inside its container: one raw request to
	// the engine API, as the guard sees it.
	api := func(method, path string, body ...string) engine.ExecResult {
		t.Helper()
		cmd := append([]string{"/pgha", "guard", "api", method, path}, body...)
		res, err := eng.Exec(ctx, guardName, engine.ExecOptions{}, cmd...)
		if err != nil {
			t.Fatal(err)
		}
		out := res.Stdout + res.Stderr
		if len(out) > 400 { // a container list: its beginning says enough
			out = out[:400] + "…\n"
		}
		t.Logf("inside %s: pgha guard api %s %s -> exit %d\n%s", guardName, method, path, res.ExitCode, out)
		return res
	}
	refused := func(res engine.ExecResult, why string) {
		t.Helper()
		if res.ExitCode == 0 || !strings.HasPrefix(res.Stdout, "HTTP 403 Forbidden") || !strings.Contains(res.Stdout, why) {
			t.Errorf("not refused with 403 (%q): %+v", why, res)
		}
	}
	img := info.Config.Image
	refused(api("POST", "/v1.41/containers/create?name="+c.name+"-evil", `{"Image":"`+img+`","Entrypoint":["/pgha","version"]}`), "POST is not allowed")
	refused(api("GET", "/v1.41/containers/"+c.topo.ContainerName("patroni1")+"/json"), "is not allowed")
	refused(api("POST", "/v1.41/containers/"+c.topo.ContainerName("patroni1")+"/exec", `{"Cmd":["env"]}`), "POST is not allowed")
	refused(api("GET", "/v1.41/containers/x/json/../../../containers/"+c.topo.ContainerName("patroni1")+"/json"), "dot segments")
	refused(api("GET", "/v1.41/containers/json?all=1"), "must filter on label "+topology.LabelCluster+"="+c.name)
	if cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", c.name+"-evil"))}); err != nil || len(cs) != 0 {
		t.Errorf("a container was created: %v %v", cs, err)
	}
	// The engine's own socket is not in the guard's container at all.
	if res := api("GET", "/_ping", "--engine-socket", "/var/run/docker.sock"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "no such file") {
		t.Errorf("the engine's socket answered inside the guard: %+v", res)
	}

	// What the guard may read: the cluster's containers, without environments.
	f, _ := filters.ToJSON(clusterFilter(c.name))
	list := api("GET", "/v1.41/containers/json?all=1&filters="+url.QueryEscape(f))
	if list.ExitCode != 0 || !strings.Contains(list.Stdout, c.topo.ContainerName("patroni1")) {
		t.Fatalf("the cluster's list was refused: %+v", list)
	}
	sec, _ := c.secrets(t)
	raw, _ := json.Marshal(sec)
	var fields map[string]any
	_ = json.Unmarshal(raw, &fields)
	checked := 0
	for k, v := range fields {
		if s, ok := v.(string); ok && len(s) >= 8 {
			checked++
			if strings.Contains(list.Stdout, s) {
				t.Errorf("the list the guard reads holds the secret %s", k)
			}
		}
	}
	if checked == 0 {
		t.Error("no secret checked")
	}

	// The proxy logged each refusal.
	logs := containerLogs(t, proxyName, "all")
	if n := strings.Count(logs, `"event":"refused"`); n < 5 {
		t.Errorf("%d refusals in the proxy's log:\n%s", n, logs)
	}

	st := c.status(t)
	rows := map[string]string{}
	for _, n := range st.Nodes {
		rows[n.Container] = n.State + ", " + n.Health
	}
	if !strings.HasPrefix(rows[guardName], "running, watching") || !strings.HasPrefix(rows[proxyName], "running, serving") || len(st.Problems) != 0 {
		t.Errorf("status: guard %q, proxy %q, problems %v", rows[guardName], rows[proxyName], st.Problems)
	}

	mustPgha(t, "down", "--name", c.name)
	for _, name := range []string{guardName, proxyName} {
		if _, err := docker.ContainerInspect(ctx, name); !engine.IsNotFound(err) {
			t.Errorf("%s after down: %v", name, err)
		}
	}
}
