package topology

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// clusterName must be usable inside Docker container, network and volume
	// names and as a directory name under the state root.
	clusterName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	// scopeName is Patroni's scope: a path segment in etcd and the pgBackRest stanza.
	scopeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	// namespace is etcd's key prefix: slash-separated segments.
	namespace = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+/?$`)
	// nodeName is also a host name on the cluster network and a Patroni member name.
	nodeName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	bucket   = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// ValidationError lists every problem found in a topology.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid topology: " + e.Problems[0]
	}
	return "invalid topology:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// ValidName checks a cluster name: the one rule every command applies to
// --name (and a topology's name) before it touches the engine or the state
// directory. The name becomes part of Docker names and a directory name.
func ValidName(name string) error {
	if !clusterName.MatchString(name) {
		shown := name
		if len(shown) > 50 {
			shown = shown[:47] + "..."
		}
		return fmt.Errorf("cluster name %q: use 1-40 lowercase letters, digits and '-', starting with a letter or digit (it becomes part of Docker names and a directory name)", shown)
	}
	return nil
}

// reservedNodeNames are host names pgha's own containers take on the
// cluster network.
var reservedNodeNames = map[string]string{
	StoreMinIO:       "the object store",
	StoreVersityGW:   "the object store",
	ObjectStoreAlias: "the object store's alias",
	GuardNode:        "the guard",
	GuardProxyNode:   "the guard's API proxy",
	RouterNode:       "the router",
}

// Validate checks the whole topology and reports every problem at once.
// Warnings describe legal but doubtful choices, such as an even etcd count.
func (c Cluster) Validate() (warnings []string, err error) {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }

	if err := ValidName(c.Name); err != nil {
		add("%v", err)
	}
	if !scopeName.MatchString(c.Scope) {
		add("scope %q: use 1-63 letters, digits, '.', '_' and '-', starting with a letter or digit (it is a key segment in etcd and the pgBackRest stanza)", c.Scope)
	}
	if !namespace.MatchString(c.Namespace) {
		add("namespace %q: must start with '/' and hold letters, digits, '.', '_', '-' and '/' only", c.Namespace)
	}
	if len(c.Etcd) == 0 {
		add("etcd: at least one member is needed")
	} else if len(c.Etcd)%2 == 0 {
		warnings = append(warnings, fmt.Sprintf("%d etcd members: an even count tolerates no more failures than %d; prefer an odd number", len(c.Etcd), len(c.Etcd)-1))
	}
	if len(c.Patroni) == 0 {
		add("patroni: at least one node is needed")
	}

	names := map[string]string{}
	checkName := func(where, name string) {
		switch {
		case !nodeName.MatchString(name):
			add("%s name %q: use lowercase letters, digits and '-' (it is a host name)", where, name)
		case reservedNodeNames[name] != "":
			add("%s name %q: reserved for %s", where, name, reservedNodeNames[name])
		case names[name] != "":
			add("%s name %q: already used by %s", where, name, names[name])
		default:
			names[name] = where
		}
	}
	for i, e := range c.Etcd {
		checkName(fmt.Sprintf("etcd[%d]", i), e.Name)
	}
	for i, n := range c.Patroni {
		checkName(fmt.Sprintf("patroni[%d]", i), n.Name)
	}

	ports := map[int]string{}
	checkPort := func(where string, port int) {
		switch {
		case port < 1 || port > 65535:
			add("%s %d: not a valid port (1-65535)", where, port)
		case ports[port] != "":
			add("%s %d: already used by %s", where, port, ports[port])
		default:
			ports[port] = where
		}
	}
	for i, e := range c.Etcd {
		checkPort(fmt.Sprintf("etcd[%d].clientPort", i), e.ClientPort)
	}
	for i, n := range c.Patroni {
		checkPort(fmt.Sprintf("patroni[%d].pgPort", i), n.PGPort)
		checkPort(fmt.Sprintf("patroni[%d].restPort", i), n.RESTPort)
	}
	checkPort("objectStore.apiPort", c.ObjectStore.APIPort)
	if c.ObjectStore.ConsolePort != 0 {
		checkPort("objectStore.consolePort", c.ObjectStore.ConsolePort)
	}
	if c.Router {
		checkPort("routerPorts.primary", c.RouterPorts.Primary)
		checkPort("routerPorts.replicas", c.RouterPorts.Replicas)
		checkPort("routerPorts.stats", c.RouterPorts.Stats)
	}
	if !bucket.MatchString(c.ObjectStore.Bucket) {
		add("objectStore.bucket %q: not a valid S3 bucket name", c.ObjectStore.Bucket)
	}
	if _, ok := c.PatroniNode(c.BootstrapLeader); !ok && len(c.Patroni) > 0 {
		add("bootstrapLeader %q: not one of the patroni nodes", c.BootstrapLeader)
	}
	if _, ok := Profiles[c.Profile]; !ok {
		add("profile %q: use %s or %s", c.Profile, ProfileFast, ProfileSeed)
	}
	switch c.SynchronousMode {
	case SyncOff, SyncOn, SyncStrict:
		if c.SynchronousMode != SyncOff && len(c.Patroni) < 2 {
			add("synchronousMode %s: needs at least 2 Patroni nodes", c.SynchronousMode)
		}
	default:
		add("synchronousMode %q: use off, on or strict", c.SynchronousMode)
	}
	c.validatePlacements(add)
	if len(p) > 0 {
		return warnings, &ValidationError{Problems: p}
	}
	return warnings, nil
}
