package hosts

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"
	"github.com/pgha/pgha/pkg/topology"
)

func validOptions() Options {
	return Options{
		Prefix:   "t1",
		Count:    3,
		Ports:    map[int][]int{1: {15435, 18008, 19000}, 2: {15436}, 3: {15437}},
		StateDir: "/tmp/pgha-state/hosts",
		Labels:   map[string]string{"io.example": "x"},
	}
}

func TestCapabilitiesExcludeSysResource(t *testing.T) {
	if slices.Contains(Capabilities, "CAP_SYS_RESOURCE") || slices.Contains(Capabilities, "SYS_RESOURCE") {
		t.Fatal("SYS_RESOURCE is not in this machine's bounding set: asking for it makes the container fail to start")
	}
	if slices.Contains(Capabilities, "ALL") {
		t.Fatal("ALL would include SYS_RESOURCE")
	}
	// Linux has 41 capabilities (0..40); every one but SYS_RESOURCE.
	if len(Capabilities) != 40 {
		t.Fatalf("%d capabilities, want 40", len(Capabilities))
	}
	seen := map[string]bool{}
	for _, c := range Capabilities {
		if seen[c] {
			t.Errorf("%s twice", c)
		}
		seen[c] = true
	}
	for _, must := range []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_MKNOD", "CAP_SYS_MODULE", "CAP_SYS_PTRACE"} {
		if !seen[must] {
			t.Errorf("%s missing", must)
		}
	}
}

func TestUnknownCapability(t *testing.T) {
	for msg, want := range map[string]string{
		`Error response from daemon: invalid CapAdd: unknown capability: "CAP_BPF"`: "CAP_BPF",
		`invalid CapAdd: unknown capability: CAP_PERFMON`:                           "CAP_PERFMON",
		`port is already allocated`:                                                 "",
	} {
		if got := unknownCapability(errors.New(msg)); got != want {
			t.Errorf("%q: got %q, want %q", msg, got, want)
		}
	}
	if unknownCapability(nil) != "" {
		t.Error("nil error")
	}
}

func TestEngineSpec(t *testing.T) {
	o, err := validOptions().withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg, hc, nc := engineSpec(o, 1, "pgha/dind:abc", Capabilities, "10.200.0.11")

	if cfg.Hostname != "h1" {
		t.Errorf("hostname %q, want h1 (node.hostname constraints)", cfg.Hostname)
	}
	if cfg.Image != "pgha/dind:abc" {
		t.Errorf("image %q", cfg.Image)
	}
	wantLabels := map[string]string{
		LabelHosts: "t1", LabelRole: RoleEngine, LabelNode: "h1", LabelSwarmRole: "manager",
		LabelSocketDir: "/tmp/pgha-state/hosts/t1/h1", "io.example": "x",
	}
	for k, v := range wantLabels {
		if cfg.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, cfg.Labels[k], v)
		}
	}
	if !slices.Contains(cfg.Env, "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1") {
		t.Errorf("env %v", cfg.Env)
	}
	cmd := strings.Join(cfg.Cmd, " ")
	for _, want := range []string{"dockerd", "--storage-driver=fuse-overlayfs", "--host=unix:///run/dind/docker.sock",
		"--default-address-pool=base=10.201.0.0/16,size=24", "--group="} {
		if !strings.Contains(cmd, want) {
			t.Errorf("command %q lacks %q", cmd, want)
		}
	}
	if strings.Contains(cmd, "tcp://") {
		t.Errorf("command %q listens on TCP", cmd)
	}

	// Ports: every one on 127.0.0.1, the same number outside and inside.
	if len(hc.PortBindings) != 3 {
		t.Fatalf("bindings %v", hc.PortBindings)
	}
	for p, bs := range hc.PortBindings {
		if len(bs) != 1 || bs[0].HostIP != "127.0.0.1" || bs[0].HostPort != p.Port() || p.Proto() != "tcp" {
			t.Errorf("port %s bound as %+v, want 127.0.0.1:%s", p, bs, p.Port())
		}
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed", p)
		}
	}
	if got := publishedPorts(hc.PortBindings); !slices.Equal(got, []int{15435, 18008, 19000}) {
		t.Errorf("published %v", got)
	}

	if hc.Privileged {
		t.Error("privileged is refused by this engine")
	}
	if slices.Contains(hc.CapAdd, "CAP_SYS_RESOURCE") || len(hc.CapAdd) != len(Capabilities) {
		t.Errorf("capabilities %v", hc.CapAdd)
	}
	for _, want := range []string{"seccomp=unconfined", "apparmor=unconfined"} {
		if !slices.Contains(hc.SecurityOpt, want) {
			t.Errorf("security options %v lack %s", hc.SecurityOpt, want)
		}
	}
	// systempaths=unconfined is a CLI option: the API takes empty, non-nil lists.
	if hc.MaskedPaths == nil || len(hc.MaskedPaths) != 0 || hc.ReadonlyPaths == nil || len(hc.ReadonlyPaths) != 0 {
		t.Errorf("masked %v, read-only %v: want empty lists", hc.MaskedPaths, hc.ReadonlyPaths)
	}
	js, _ := json.Marshal(hc)
	if !strings.Contains(string(js), `"MaskedPaths":[]`) || !strings.Contains(string(js), `"ReadonlyPaths":[]`) {
		t.Errorf("the API must see [] (null keeps the defaults): %s", js)
	}
	if hc.CgroupnsMode != "host" {
		t.Errorf("cgroupns %q", hc.CgroupnsMode)
	}
	if _, ok := hc.Tmpfs["/run"]; !ok {
		t.Errorf("tmpfs %v", hc.Tmpfs)
	}
	if len(hc.Devices) != 1 || hc.Devices[0].PathOnHost != "/dev/fuse" {
		t.Errorf("devices %v", hc.Devices)
	}
	mounts := map[string]mount.Mount{}
	for _, m := range hc.Mounts {
		mounts[m.Target] = m
	}
	if m := mounts["/sys/fs/cgroup"]; m.Type != mount.TypeBind || m.Source != "/sys/fs/cgroup" {
		t.Errorf("cgroup mount %+v", m)
	}
	if m := mounts["/var/lib/docker"]; m.Type != mount.TypeVolume || m.Source != "t1-h1-docker" {
		t.Errorf("data mount %+v", m)
	}
	if m := mounts["/run/dind"]; m.Type != mount.TypeBind || m.Source != "/tmp/pgha-state/hosts/t1/h1" {
		t.Errorf("socket mount %+v", m)
	}
	if hc.RestartPolicy.Name != "no" {
		t.Errorf("restart policy %q", hc.RestartPolicy.Name)
	}
	if ep, ok := nc.EndpointsConfig["t1-hosts"]; !ok || len(nc.EndpointsConfig) != 1 {
		t.Errorf("networks %v: want only t1-hosts (API 1.41 takes one at create)", nc.EndpointsConfig)
	} else if ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address != "10.200.0.11" {
		t.Errorf("h1's address %+v: want the fixed 10.200.0.11 (the swarm remembers managers by address)", ep.IPAMConfig)
	}

	// A host without ports publishes none.
	_, hc4, _ := engineSpec(o, 2, "x", Capabilities, "10.200.0.12")
	if len(hc4.PortBindings) != 1 {
		t.Errorf("host 2 bindings %v", hc4.PortBindings)
	}
}

func TestSwarmRoles(t *testing.T) {
	for _, tc := range []struct {
		count int
		want  string
	}{{1, "manager"}, {2, "manager worker"}, {3, "manager manager manager"}, {5, "manager manager manager worker worker"}} {
		var roles []string
		for i := 1; i <= tc.count; i++ {
			roles = append(roles, swarmRole(i, tc.count))
		}
		if got := strings.Join(roles, " "); got != tc.want {
			t.Errorf("count %d: %s, want %s", tc.count, got, tc.want)
		}
	}
}

func TestLabels(t *testing.T) {
	o, _ := validOptions().withDefaults()
	if l := labels(o, RoleNetwork, 0); l[LabelHosts] != "t1" || l[LabelRole] != RoleNetwork || l[LabelNode] != "" || l[LabelSocketDir] != "" {
		t.Errorf("network labels %v", l)
	}
	if l := labels(o, RoleData, 2); l[LabelNode] != "h2" || l[LabelSocketDir] != "/tmp/pgha-state/hosts/t1/h2" || l[LabelSwarmRole] != "" {
		t.Errorf("volume labels %v", l)
	}
	// The role and node keys are pgha's usual ones.
	if LabelRole != topology.LabelRole || LabelNode != topology.LabelNode {
		t.Error("label keys differ from pkg/topology's")
	}
	// No collision with a cluster's resources.
	if strings.HasPrefix(LabelHosts, topology.LabelCluster) {
		t.Error("hosts label must not match cluster label filters")
	}
}

func TestNames(t *testing.T) {
	if ContainerName("pgha", 2) != "pgha-h2" || NetworkName("pgha") != "pgha-hosts" || VolumeName("pgha", 3) != "pgha-h3-docker" {
		t.Error("names")
	}
	if got := SocketURL(SocketDir("/s", "p", 1)); got != "unix:///s/p/h1/docker.sock" {
		t.Errorf("socket %s", got)
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string // "" = valid
	}{
		{"valid", func(*Options) {}, ""},
		{"default count", func(o *Options) { o.Count = 0; o.Ports = nil }, ""},
		{"bad prefix", func(o *Options) { o.Prefix = "Bad_Prefix" }, "prefix"},
		{"empty prefix", func(o *Options) { o.Prefix = "" }, "prefix"},
		{"trailing dash", func(o *Options) { o.Prefix = "a-" }, "prefix"},
		{"no state dir", func(o *Options) { o.StateDir = "" }, "state directory"},
		{"long state dir", func(o *Options) { o.StateDir = "/" + strings.Repeat("x", 90) }, "too long"},
		{"host out of range", func(o *Options) { o.Ports[4] = []int{1} }, "host 4"},
		{"port zero", func(o *Options) { o.Ports[2] = []int{0} }, "not a TCP port"},
		{"port too big", func(o *Options) { o.Ports[2] = []int{70000} }, "not a TCP port"},
		{"swarm port", func(o *Options) { o.Ports[2] = []int{2377} }, "control port"},
		{"gossip port", func(o *Options) { o.Ports[2] = []int{7946} }, "gossip"},
		{"duplicate port", func(o *Options) { o.Ports[3] = []int{15435} }, "published once"},
		{"bad pool", func(o *Options) { o.AddressPool = "10.0.0.0" }, "address pool"},
		{"small pool", func(o *Options) { o.AddressPool = "10.201.0.0/25" }, "/24"},
		{"ipv6 pool", func(o *Options) { o.SwarmAddressPool = "fd00::/64" }, "IPv4"},
		{"unmasked pool", func(o *Options) { o.AddressPool = "10.201.3.0/16" }, "10.201.0.0/16"},
		{"pools overlap", func(o *Options) { o.SwarmAddressPool = "10.201.128.0/17" }, "overlap"},
		{"network pool overlaps", func(o *Options) { o.NetworkPool = "10.0.0.0/8" }, "network pool 10.0.0.0/8 overlap"},
		{"network pool", func(o *Options) { o.NetworkPool = "192.168.77.0/24" }, ""},
		{"own label", func(o *Options) { o.Labels = map[string]string{LabelHosts: "x"} }, "set by pgha"},
		{"too many", func(o *Options) { o.Count = 50 }, "1 to 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := validOptions()
			o.Ports = map[int][]int{1: {15435, 18008, 19000}, 2: {15436}, 3: {15437}}
			tc.change(&o)
			got, err := o.withDefaults()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want one about %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if tc.want == "" && (got.Count < 1 || got.AddressPool == "" || got.SwarmAddressPool == "" || got.NetworkPool == "" || got.ReadyTimeout == 0) {
				t.Errorf("defaults not filled: %+v", got)
			}
		})
	}
}

func TestValidationCollectsEveryError(t *testing.T) {
	_, err := Options{Prefix: "X", Ports: map[int][]int{9: {1}}}.withDefaults()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"prefix", "state directory", "host 9"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestOverlapping(t *testing.T) {
	subnets := []string{"172.17.0.0/16", "172.19.0.0/16", "10.201.5.0/24", "10.0.0.0/8", "fd00::/64", "garbage"}
	if got := overlapping("10.201.0.0/16", subnets); !slices.Equal(got, []string{"10.201.5.0/24", "10.0.0.0/8"}) {
		t.Errorf("got %v", got)
	}
	if got := overlapping("10.202.0.0/16", []string{"172.17.0.0/16", "192.168.0.0/20"}); len(got) != 0 {
		t.Errorf("got %v", got)
	}
}

func TestPickSubnet(t *testing.T) {
	for _, tc := range []struct {
		pool string
		used []string
		want string
	}{
		{"10.200.0.0/16", []string{"172.17.0.0/16", "172.18.0.0/16"}, "10.200.0.0/24"},
		{"10.200.0.0/16", []string{"10.200.0.0/24", "10.200.1.0/24", "10.201.0.0/16"}, "10.200.2.0/24"},
		{"10.200.0.0/16", []string{"10.200.0.0/23", "10.200.2.128/25"}, "10.200.3.0/24"},
		{"10.200.0.0/23", []string{"10.200.0.0/24"}, "10.200.1.0/24"},
		{"10.200.0.0/23", []string{"10.0.0.0/8"}, ""},
		{"10.0.0.0/15", []string{"10.0.0.0/16"}, "10.1.0.0/24"},
	} {
		got, err := pickSubnet(tc.pool, tc.used)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("pickSubnet(%s, %v) = %q, %v; want %q", tc.pool, tc.used, got, err, tc.want)
		}
	}
}

func TestHostAddress(t *testing.T) {
	for i, want := range map[int]string{1: "10.200.3.11", 3: "10.200.3.13", 20: "10.200.3.30"} {
		if got, err := hostAddress("10.200.3.0/24", i); err != nil || got != want {
			t.Errorf("host %d: %s %v, want %s", i, got, err, want)
		}
	}
	if gw, _ := subnetAddress("10.200.3.0/24", 1); gw != "10.200.3.1" {
		t.Errorf("gateway %s", gw)
	}
	if _, err := hostAddress("fd00::/64", 1); err == nil {
		t.Error("IPv6 subnet accepted")
	}
}

func TestOwnSocketDir(t *testing.T) {
	for dir, want := range map[string]bool{
		"/s/p/h1":      true,
		"/s/p/h12":     true,
		"/s/q/h1":      false, // another prefix
		"/s/p/x":       false,
		"p/h1":         false, // relative
		"/s/p/../p/h1": false,
		"/":            false,
	} {
		if got := ownSocketDir(dir, "p"); got != want {
			t.Errorf("%s: %v, want %v", dir, got, want)
		}
	}
}

func TestPublishedPortsIgnoresUDP(t *testing.T) {
	m := nat.PortMap{"53/udp": nil, "80/tcp": nil, "8080/tcp": nil}
	if got := publishedPorts(m); !slices.Equal(got, []int{80, 8080}) {
		t.Errorf("got %v", got)
	}
}
