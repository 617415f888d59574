package topology

import (
	"strings"
	"testing"
)

// The router is on by default, on 5000/5001/7000, shifted with the other
// ports; router: false turns it off; a router port that collides is refused.
func TestRouterSwitchAndPorts(t *testing.T) {
	c := Seed()
	if !c.Router || c.RouterPorts != (RouterPorts{Primary: 5000, Replicas: 5001, Stats: 7000}) {
		t.Fatalf("seed router %v %+v", c.Router, c.RouterPorts)
	}
	c.ShiftPorts(32000)
	if c.RouterPorts != (RouterPorts{Primary: 37000, Replicas: 37001, Stats: 39000}) {
		t.Errorf("shifted router ports %+v", c.RouterPorts)
	}
	const nodes = "etcd: [{name: e1, clientPort: 2379}]\npatroni: [{name: p1, pgPort: 5432, restPort: 8008}]\nobjectStore: {apiPort: 9000}\n"
	f, _, err := Parse([]byte("name: a\n" + nodes))
	if err != nil || !f.Router || f.RouterPorts != DefaultRouterPorts() {
		t.Errorf("a file without router: %v %+v %v", f.Router, f.RouterPorts, err)
	}
	f, _, err = Parse([]byte("name: a\nrouter: false\n" + nodes))
	if err != nil || f.Router {
		t.Errorf("router: false: %v %v", f.Router, err)
	}
	if _, _, err := Parse([]byte("name: a\nrouterPorts: {primary: 9000}\n" + nodes)); err == nil || !strings.Contains(err.Error(), "routerPorts.primary 9000: already used by objectStore.apiPort") {
		t.Errorf("a router port on the store's: %v", err)
	}
	if _, _, err := Parse([]byte("name: a\nrouterPorts: {writer: 1}\n" + nodes)); err == nil || !strings.Contains(err.Error(), `unknown field "writer" in routerPorts`) {
		t.Errorf("an unknown router field: %v", err)
	}
	c = Seed()
	c.Patroni[0].Name = RouterNode
	if _, err := c.Validate(); err == nil || !strings.Contains(err.Error(), `"router": reserved for the router`) {
		t.Errorf("a node named router: %v", err)
	}
	found := false
	for _, hp := range Seed().HostPorts(StoreVersityGW) {
		found = found || (hp.Port == 5000 && hp.Node == RouterNode)
	}
	if !found {
		t.Error("HostPorts leaves out the router's 5000")
	}
}

// The generated haproxy.cfg: 5000 to the node whose Patroni says /primary,
// 5001 to nodes that say /replica and not /primary, each Patroni node by its
// network name, sessions cut when a node is marked down, fast checks, the
// stats page, names resolved at run time.
func TestRouterConfig(t *testing.T) {
	c, _ := Generate("lab", 3, 5)
	cfg := c.RouterConfig()
	section := func(name string) string {
		i := strings.Index(cfg, "\nlisten "+name+"\n")
		if i < 0 {
			t.Fatalf("no listen %s in\n%s", name, cfg)
		}
		rest := cfg[i+1:]
		if j := strings.Index(rest[1:], "\nlisten "); j >= 0 {
			rest = rest[:j+1]
		}
		return rest
	}
	primary, replicas, stats := section("primary"), section("replicas"), section("stats")
	for _, want := range []string{"bind *:5000", "http-check connect port 8008\n    http-check send meth GET uri /primary ver HTTP/1.1 hdr Host patroni hdr Connection close\n    http-check expect rstring \"\\\"role\\\": *\\\"primary\\\"\"\n    http-check expect status 200\n",
		"on-marked-down shutdown-sessions", "inter 300ms", "downinter 50ms", "rise 1 fall 1", "resolvers engine", "init-addr last,libc,none",
		"server patroni1 patroni1:5432 check\n", "server patroni5 patroni5:5432 check\n"} {
		if !strings.Contains(primary, want) {
			t.Errorf("listen primary lacks %q:\n%s", want, primary)
		}
	}
	for _, want := range []string{"bind *:5001", "balance roundrobin", "http-check connect port 8008",
		"http-check send meth OPTIONS uri /primary\n    http-check expect status 503",
		"http-check send meth OPTIONS uri /replica\n    http-check expect status 200",
		"on-marked-down shutdown-sessions", "server patroni4 patroni4:5432 check"} {
		if !strings.Contains(replicas, want) {
			t.Errorf("listen replicas lacks %q:\n%s", want, replicas)
		}
	}
	// The replica listener's down nodes (the primary among them) are
	// checked every second, not every 50 ms: a quarter of all checks.
	if !strings.Contains(replicas, "inter 200ms fastinter 200ms downinter 1s ") {
		t.Errorf("listen replicas: want downinter 1s:\n%s", replicas)
	}
	// A failed client connection wakes the node's check; it never marks the
	// node down itself (see routerDefaultServer: that froze the session).
	for name, sec := range map[string]string{"primary": primary, "replicas": replicas} {
		if !strings.Contains(sec, "observe layer4 error-limit 1 on-error fastinter ") || strings.Contains(sec, "mark-down") {
			t.Errorf("listen %s: want observe layer4 with on-error fastinter, never mark-down:\n%s", name, sec)
		}
	}
	if !strings.Contains(stats, "bind *:7000") || !strings.Contains(stats, "stats enable") || !strings.Contains(stats, "mode http") {
		t.Errorf("stats section:\n%s", stats)
	}
	// No session in the first 1.5 s after a start, before the first checks.
	if !strings.Contains(cfg, "set-var proc.started date(0,ms)") || strings.Count(cfg, "tcp-request connection reject if { date(0,ms),sub(proc.started) lt 1500 }") != 2 {
		t.Errorf("no warm-up guard on both listeners:\n%s", cfg)
	}
	if !strings.Contains(cfg, "nameserver dns 127.0.0.11:53") || !strings.Contains(cfg, "mode tcp") {
		t.Errorf("resolvers or defaults missing:\n%s", cfg)
	}
	// Host ports never appear in it: the container listens on fixed ports.
	c.ShiftPorts(100)
	if c.RouterConfig() != cfg {
		t.Error("the config depends on host ports")
	}
}
