package hosts

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/pgha/pgha/pkg/topology"
)

// Labels. LabelHosts is the ownership record of a swarm of test hosts; the
// role and node keys are pgha's usual ones.
const (
	LabelHosts = "io.pgha.hosts"
	LabelRole  = topology.LabelRole
	LabelNode  = topology.LabelNode
	// LabelSocketDir records, on a host's container and volume, the machine's
	// directory that holds the inner engine's socket, so that Delete can
	// remove it knowing only the prefix.
	LabelSocketDir = "io.pgha.hosts.socket-dir"
	// LabelSwarmRole is manager or worker.
	LabelSwarmRole = "io.pgha.hosts.swarm-role"
)

// Roles of the resources this package makes.
const (
	RoleEngine  = "hosts-engine"  // a host's container
	RoleNetwork = "hosts-network" // the bridge the hosts share
	RoleData    = "hosts-data"    // a host's /var/lib/docker volume
)

// Defaults.
const (
	DefaultCount = 3
	// MaxManagers hosts are swarm managers; the others join as workers.
	MaxManagers = 3
	// DefaultAddressPool is where the inner engines take their local networks
	// (docker0, docker_gwbridge, user bridges): away from the outer engine's
	// 172.17.0.0/12 and 192.168.0.0/16 defaults.
	DefaultAddressPool = "10.201.0.0/16"
	// DefaultSwarmAddressPool is where the swarm takes its overlay networks,
	// ingress included (swarm's own default is 10.0.0.0/8).
	DefaultSwarmAddressPool = "10.202.0.0/16"
	// DefaultNetworkPool is where the bridge the hosts share takes its /24,
	// the first one no network of the outer engine uses. Each host has a
	// fixed address on it (.11 for h1, .12 for h2 …): the swarm remembers
	// its managers by address, so a host that came back from a stop with
	// another one would never rejoin.
	DefaultNetworkPool = "10.200.0.0/16"
	// PoolSubnetSize is the prefix length of each network taken from a pool.
	PoolSubnetSize = 24
	// DefaultReadyTimeout bounds the wait for an engine to answer and for
	// the swarm to report every node ready.
	DefaultReadyTimeout = 90 * time.Second
	// SwarmPort is the swarm's control port on every host's shared address.
	SwarmPort = 2377
	// socketDirInContainer is where the engine makes its socket; the machine's
	// socket directory is bind-mounted there.
	socketDirInContainer = "/run/dind"
	// stopTimeout is how long an engine gets to stop its own containers.
	stopTimeout = 30
)

// reservedPorts are used by the inner engines on their shared address, so a
// host cannot publish them: the swarm's control port and its gossip port.
var reservedPorts = map[int]string{SwarmPort: "the swarm's control port", 7946: "the swarm's gossip port"}

// Options says what Create makes.
type Options struct {
	// Prefix names everything: containers <prefix>-h1 …, network
	// <prefix>-hosts, volumes <prefix>-h1-docker …, label io.pgha.hosts=<prefix>.
	Prefix string
	// Count is the number of hosts (default 3). The first three are managers.
	Count int
	// Ports maps a host index (1-based) to the TCP ports it publishes on
	// 127.0.0.1, the same number outside and inside. Fixed at creation.
	Ports map[int][]int
	// StateDir is the machine's directory for the engines' sockets:
	// <StateDir>/<prefix>/h1/docker.sock …
	StateDir string
	// Images are refs on the outer engine to load into every host.
	Images []string
	// Labels are extra labels on every resource.
	Labels map[string]string
	// EngineImage is the image of a host; empty builds pgha/dind:<hash> from
	// images/dind on the offline base.
	EngineImage string
	// AddressPool, SwarmAddressPool and NetworkPool override
	// DefaultAddressPool, DefaultSwarmAddressPool and DefaultNetworkPool
	// (IPv4 CIDRs, /24 or larger, apart from each other).
	AddressPool, SwarmAddressPool, NetworkPool string
	// ReadyTimeout overrides DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

var prefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// withDefaults fills the defaults and checks everything that needs no engine.
// It collects every error.
func (o Options) withDefaults() (Options, error) {
	if o.Count == 0 {
		o.Count = DefaultCount
	}
	if o.AddressPool == "" {
		o.AddressPool = DefaultAddressPool
	}
	if o.SwarmAddressPool == "" {
		o.SwarmAddressPool = DefaultSwarmAddressPool
	}
	if o.NetworkPool == "" {
		o.NetworkPool = DefaultNetworkPool
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	var errs []error
	if !prefixRE.MatchString(o.Prefix) || strings.HasSuffix(o.Prefix, "-") {
		errs = append(errs, fmt.Errorf("prefix %q: use 1 to 40 lowercase letters, digits and dashes, starting with a letter or digit", o.Prefix))
	}
	if o.Count < 1 || o.Count > 20 {
		errs = append(errs, fmt.Errorf("count %d: a swarm of test hosts has 1 to 20 hosts", o.Count))
	}
	if o.StateDir == "" {
		errs = append(errs, errors.New("no state directory: the hosts' sockets need one (such as ~/.local/state/pgha/hosts)"))
	} else if !filepath.IsAbs(o.StateDir) {
		abs, err := filepath.Abs(o.StateDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("state directory %q: %w", o.StateDir, err))
		}
		o.StateDir = abs
	}
	if o.StateDir != "" && prefixRE.MatchString(o.Prefix) {
		// A unix socket path has room for 107 bytes.
		if p := socketPath(o.StateDir, o.Prefix, o.Count); len(p) > 100 {
			errs = append(errs, fmt.Errorf("state directory %q is too long for a unix socket path (%s is %d bytes, at most 100): choose a shorter one", o.StateDir, p, len(p)))
		}
	}
	errs = append(errs, checkPorts(o.Ports, o.Count)...)
	pools := o.pools()
	valid := map[string]bool{}
	for _, what := range slices.Sorted(maps.Keys(pools)) {
		p := pools[what]
		pfx, err := netip.ParsePrefix(p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q: %w", what, p, err))
		case !pfx.Addr().Is4() || pfx.Bits() > PoolSubnetSize:
			errs = append(errs, fmt.Errorf("%s %q: give an IPv4 network of /%d or larger", what, p, PoolSubnetSize))
		case pfx.Masked() != pfx:
			errs = append(errs, fmt.Errorf("%s %q: not a network address (did you mean %s?)", what, p, pfx.Masked()))
		default:
			valid[what] = true
		}
	}
	names := slices.Sorted(maps.Keys(pools))
	for a := range names {
		for b := a + 1; b < len(names); b++ {
			if valid[names[a]] && valid[names[b]] && len(overlapping(pools[names[a]], []string{pools[names[b]]})) > 0 {
				errs = append(errs, fmt.Errorf("the %s %s and the %s %s overlap: choose apart ones", names[a], pools[names[a]], names[b], pools[names[b]]))
			}
		}
	}
	for k := range o.Labels {
		if k == LabelHosts || k == LabelRole || k == LabelNode || k == LabelSocketDir || k == LabelSwarmRole {
			errs = append(errs, fmt.Errorf("label %s is set by pgha itself", k))
		}
	}
	return o, errors.Join(errs...)
}

// pools names the address pools.
func (o Options) pools() map[string]string {
	return map[string]string{"address pool": o.AddressPool, "swarm address pool": o.SwarmAddressPool, "network pool": o.NetworkPool}
}

// checkPorts checks a port plan: known hosts, valid, not reserved, each port
// once on the machine.
func checkPorts(ports map[int][]int, count int) []error {
	var errs []error
	owner := map[int]int{}
	idx := make([]int, 0, len(ports))
	for i := range ports {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		if i < 1 || i > count {
			errs = append(errs, fmt.Errorf("ports for host %d: there are hosts 1 to %d", i, count))
			continue
		}
		for _, p := range ports[i] {
			switch {
			case p < 1 || p > 65535:
				errs = append(errs, fmt.Errorf("host %d: port %d is not a TCP port", i, p))
			case reservedPorts[p] != "":
				errs = append(errs, fmt.Errorf("host %d: port %d is %s inside every host: choose another", i, p, reservedPorts[p]))
			case owner[p] != 0:
				errs = append(errs, fmt.Errorf("port %d is planned on host %d and on host %d: 127.0.0.1:%d can be published once", p, owner[p], i, p))
			default:
				owner[p] = i
			}
		}
	}
	return errs
}

// overlapping returns the subnets that overlap pool.
func overlapping(pool string, subnets []string) []string {
	pp, err := netip.ParsePrefix(pool)
	if err != nil {
		return nil
	}
	var hits []string
	for _, s := range subnets {
		sp, err := netip.ParsePrefix(s)
		if err != nil || sp.Addr().Is4() != pp.Addr().Is4() {
			continue
		}
		if pp.Overlaps(sp) {
			hits = append(hits, s)
		}
	}
	return hits
}

// pickSubnet returns the first /24 of pool that overlaps none of used.
func pickSubnet(pool string, used []string) (string, error) {
	pfx, err := netip.ParsePrefix(pool)
	if err != nil {
		return "", err
	}
	for a := pfx.Addr(); pfx.Contains(a); {
		cand := netip.PrefixFrom(a, PoolSubnetSize)
		if len(overlapping(cand.String(), used)) == 0 {
			return cand.String(), nil
		}
		b := a.As4()
		if b[2] == 255 {
			if b[1] == 255 {
				break
			}
			b[1]++
		}
		b[2]++
		a = netip.AddrFrom4(b)
	}
	return "", fmt.Errorf("every /%d of %s is used by a network of the engine: choose another network pool", PoolSubnetSize, pool)
}

// hostAddress is host i's fixed address on the shared bridge's subnet: .11
// for h1, .12 for h2 ….
func hostAddress(subnet string, i int) (string, error) { return subnetAddress(subnet, 10+i) }

// subnetAddress is the address with the given last byte in a subnet.
func subnetAddress(subnet string, last int) (string, error) {
	pfx, err := netip.ParsePrefix(subnet)
	if err != nil || !pfx.Addr().Is4() || pfx.Bits() > PoolSubnetSize {
		return "", fmt.Errorf("subnet %q of the hosts' network is not an IPv4 /%d or larger", subnet, PoolSubnetSize)
	}
	b := pfx.Masked().Addr().As4()
	b[3] = byte(last)
	return netip.AddrFrom4(b).String(), nil
}

// Names.

// HostName is the host name of host i (1-based): the swarm node's hostname.
func HostName(i int) string { return fmt.Sprintf("h%d", i) }

// ContainerName is the container of host i.
func ContainerName(prefix string, i int) string { return prefix + "-" + HostName(i) }

// NetworkName is the bridge the hosts share.
func NetworkName(prefix string) string { return prefix + "-hosts" }

// VolumeName is the /var/lib/docker volume of host i.
func VolumeName(prefix string, i int) string { return ContainerName(prefix, i) + "-docker" }

// SocketDir is the machine's directory for host i's socket.
func SocketDir(stateDir, prefix string, i int) string {
	return filepath.Join(stateDir, prefix, HostName(i))
}

func socketPath(stateDir, prefix string, i int) string {
	return filepath.Join(SocketDir(stateDir, prefix, i), "docker.sock")
}

// SocketURL is the Docker host URL of the engine whose socket directory is dir.
func SocketURL(dir string) string { return "unix://" + filepath.Join(dir, "docker.sock") }

// managers is the number of swarm managers among count hosts: 3, or 1 when
// there are fewer than 3 hosts (an even number of managers tolerates no
// more failures than one fewer).
func managers(count int) int {
	if count >= MaxManagers {
		return MaxManagers
	}
	return 1
}

func swarmRole(i, count int) string {
	if i <= managers(count) {
		return "manager"
	}
	return "worker"
}

// labels returns the labels of a resource.
func labels(o Options, role string, i int) map[string]string {
	l := map[string]string{}
	for k, v := range o.Labels {
		l[k] = v
	}
	l[LabelHosts] = o.Prefix
	l[LabelRole] = role
	if i > 0 {
		l[LabelNode] = HostName(i)
		l[LabelSocketDir] = SocketDir(o.StateDir, o.Prefix, i)
	}
	if role == RoleEngine {
		l[LabelSwarmRole] = swarmRole(i, o.Count)
	}
	return l
}

// Capabilities are the capabilities an engine in a container asks for: every
// capability of Linux 5.9+ except SYS_RESOURCE, which this machine's bounding
// set lacks (so --privileged is refused: "unable to apply caps: operation not
// permitted"). Engines before Docker 23 do not know the last three; create
// drops those the engine calls unknown.
var Capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE" /* no CAP_SYS_RESOURCE */, "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

var unknownCapRE = regexp.MustCompile(`unknown capability: "?(CAP_[A-Z_]+)"?`)

// unknownCapability returns the capability an engine refused as unknown
// ("invalid CapAdd: unknown capability: \"CAP_BPF\""), or "".
func unknownCapability(err error) string {
	if err == nil {
		return ""
	}
	if m := unknownCapRE.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

// dockerdCommand is the inner engine's command line.
func dockerdCommand(o Options) []string {
	return []string{
		"dockerd",
		"--storage-driver=fuse-overlayfs",
		"--host=unix://" + socketDirInContainer + "/docker.sock",
		// The socket belongs to the caller's group, not to whatever group
		// has the image's "docker" gid on the machine.
		"--group=" + strconv.Itoa(os.Getgid()),
		fmt.Sprintf("--default-address-pool=base=%s,size=%d", o.AddressPool, PoolSubnetSize),
	}
}

// engineSpec is the container of host i.
func engineSpec(o Options, i int, image string, caps []string, address string) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	ports := slices.Clone(o.Ports[i])
	sort.Ints(ports)
	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for _, p := range ports {
		cp := nat.Port(fmt.Sprintf("%d/tcp", p))
		exposed[cp] = struct{}{}
		bindings[cp] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(p)}}
	}
	st := stopTimeout
	cfg := &container.Config{
		Hostname: HostName(i),
		Image:    image,
		Cmd:      dockerdCommand(o),
		Env: []string{
			"DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1",
			// No registry: a swarm task uses the loaded image without first
			// trying to pull it.
			"DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1",
		},
		Labels:       labels(o, RoleEngine, i),
		ExposedPorts: exposed,
		StopTimeout:  &st,
	}
	hc := &container.HostConfig{
		CapAdd: slices.Clone(caps),
		// What `--security-opt systempaths=unconfined` means: the docker CLI
		// turns it into empty (not nil) masked and read-only path lists.
		// Without it /proc/sys is read-only and overlay networks fail.
		SecurityOpt:   []string{"seccomp=unconfined", "apparmor=unconfined"},
		MaskedPaths:   []string{},
		ReadonlyPaths: []string{},
		CgroupnsMode:  container.CgroupnsModeHost,
		Tmpfs:         map[string]string{"/run": ""},
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: "/sys/fs/cgroup", Target: "/sys/fs/cgroup"},
			{Type: mount.TypeVolume, Source: VolumeName(o.Prefix, i), Target: "/var/lib/docker"},
			{Type: mount.TypeBind, Source: SocketDir(o.StateDir, o.Prefix, i), Target: socketDirInContainer},
		},
		Resources: container.Resources{
			Devices: []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}},
		},
		PortBindings:  bindings,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		NetworkName(o.Prefix): {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: address}},
	}}
	return cfg, hc, nc
}

// publishedPorts reads the ports a host's container publishes.
func publishedPorts(bindings nat.PortMap) []int {
	var ports []int
	for p := range bindings {
		if p.Proto() == "tcp" {
			ports = append(ports, p.Int())
		}
	}
	sort.Ints(ports)
	return ports
}

// EngineSocketInHost is the inner engine's socket as a container on that
// host mounts it (the guard's proxy on a swarm of test hosts).
const EngineSocketInHost = socketDirInContainer + "/docker.sock"
