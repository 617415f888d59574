// Package faults is the registry of faults failover-test can inject into a
// cluster member. Each fault is a type that knows how to inject itself, how
// to heal, and what it promises; the registry also drives flag validation
// and help. A fault once injected is always healed: Injected.Close heals it
// on every exit path, an interrupt included.
//
// A new fault is one more type in this package and one more line in the
// registry below.
package faults

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/topology"
)

// Member says which member (or members) a fault acts on.
type Member string

// The members a fault can act on.
const (
	// OnPrimary: the Patroni primary (or the node named by --target).
	OnPrimary Member = "primary"
	// OnReplica: a streaming replica, the synchronous standby when there is one.
	OnReplica Member = "replica"
	// OnEtcdLeader: the etcd member that leads.
	OnEtcdLeader Member = "etcd-leader"
	// OnEtcdMajority: a majority of the etcd members, so that etcd loses its quorum.
	OnEtcdMajority Member = "etcd-majority"
	// OnStore: the object store.
	OnStore Member = "store"
	// OnAll: every container of the cluster.
	OnAll Member = "all"
)

// OnPatroni says whether the fault acts on one Patroni node, which --target may name.
func (m Member) OnPatroni() bool { return m == OnPrimary || m == OnReplica }

// Expectation is what a fault does to the primary.
type Expectation string

// What a fault does to the primary.
const (
	// FailoverExpected: another node must become the primary.
	FailoverExpected Expectation = "failover"
	// NoFailover: the primary must stay the primary.
	NoFailover Expectation = "none"
	// FailoverMaybe: a primary must be there after the heal, the old one or another.
	FailoverMaybe Expectation = "any"
)

// Promises say what a fault does, so that tests and tools can rely on it.
type Promises struct {
	// On is the member the fault acts on.
	On Member `json:"on"`
	// Failover is what must happen to the primary when the fault acts on
	// On (for OnPrimary faults: when the target was the primary).
	Failover Expectation `json:"failover"`
	// Hold is how long a fault that holds lasts by default; 0 for one that
	// must outlast the leader lease (--pause-for, by default the TTL + 10 s).
	Hold time.Duration `json:"holdSeconds,omitempty"`
	// ArchivesWAL: WAL archiving is disturbed while the fault holds, and
	// every segment from before the fault to after its heal must reach the
	// repository once it is healed.
	ArchivesWAL bool `json:"archivesWal,omitempty"`
	// Helper: the fault runs pgha's network-fault helper image in the
	// member's network namespace.
	Helper bool `json:"helper,omitempty"`
	// EngineConfirmsDeath: the engine reports the member's container dead
	// (a die event), so the guard may fence it at once.
	EngineConfirmsDeath bool `json:"engineConfirmsDeath"`
	// Graceful: the member shuts down cleanly and releases its leader key.
	Graceful bool `json:"graceful"`
	// Holds: the fault lasts for a set time (--pause-for) before it is
	// healed; the others are healed as soon as the failover is measured.
	Holds bool `json:"holds"`
	// CutsPorts: the member's published ports are gone while it holds, so
	// it is watched from inside its container.
	CutsPorts bool `json:"cutsPorts"`
	// NeedsHosts: the fault acts on the whole host that runs the member,
	// and needs Target.Hosts (a cluster on test hosts).
	NeedsHosts bool `json:"needsHosts,omitempty"`
}

// Fault is one kind of failure of a cluster member.
type Fault interface {
	// Name is the fault's word on the command line: stop, kill, ...
	Name() string
	// Help is one line for --help.
	Help() string
	Promises() Promises
	// Inject applies the fault to a member.
	Inject(ctx context.Context, t Target, node string) error
	// Heal undoes it; healing a member that is already well is no error.
	Heal(ctx context.Context, t Target, node string) error
}

// Backend is what faults need of the backend that runs the cluster.
type Backend interface {
	// Where says which engine runs a member's container, and its name there.
	Where(topo topology.Cluster, node string) (*engine.Engine, string)
	// Isolate cuts a member off the cluster network; Rejoin attaches it again.
	Isolate(ctx context.Context, topo topology.Cluster, node string) error
	Rejoin(ctx context.Context, topo topology.Cluster, node string) error
}

// Target is the cluster a fault acts on.
type Target struct {
	Backend Backend
	Topo    topology.Cluster
	// Up brings the whole cluster back as `pgha up` does (power-loss heals
	// with it); nil starts every stopped container instead.
	Up func(ctx context.Context) error
	// HelperImage is the network-fault helper's image; empty builds or finds
	// it when a network fault needs it.
	HelperImage string
	// Deadline is how long a network fault lifts itself after, should pgha
	// die before it heals (0: 10 minutes).
	Deadline time.Duration
	// Hosts kills, starts, cuts and joins the hosts of a cluster on test
	// hosts (host-down, host-partition); nil on one engine.
	Hosts HostFaults
}

// registry lists every fault, in the order help shows them.
var registry = []Fault{Stop{}, Kill{}, Pause{}, Partition{},
	DCSPartition{}, EtcdQuorum{}, EtcdLeader{}, ReplicaKill{}, PowerLoss{}, LossyNetwork{}, StoreDown{},
	HostDown{}, HostPartition{}}

// All lists every fault, in the registry's order.
func All() []Fault { return append([]Fault(nil), registry...) }

// Lookup returns the fault named name, or an error that lists them all.
func Lookup(name string) (Fault, error) {
	for _, f := range registry {
		if f.Name() == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("unknown fault %q: use %s", name, strings.Join(Names(), ", "))
}

// For lists the faults that can act on t, in the registry's order: those
// that need hosts only when t has them (a matrix on one engine skips them).
func For(t Target) []Fault {
	var out []Fault
	for _, f := range registry {
		if !f.Promises().NeedsHosts || t.Hosts != nil {
			out = append(out, f)
		}
	}
	return out
}

// Names lists the faults' names.
func Names() []string {
	var out []string
	for _, f := range registry {
		out = append(out, f.Name())
	}
	return out
}

// Help describes every fault, one per line, for --help.
func Help() string {
	var lines []string
	width := 0
	for _, f := range registry {
		width = max(width, len(f.Name()))
	}
	for _, f := range registry {
		lines = append(lines, fmt.Sprintf("  %-*s  %s", width, f.Name(), f.Help()))
	}
	return strings.Join(lines, "\n")
}

// healTimeout bounds a heal that runs after the caller's context ended.
const healTimeout = 2 * time.Minute

// Injected is a fault in place on one member.
type Injected struct {
	Fault  Fault
	Target Target
	Node   string
	At     time.Time

	once sync.Once
	err  error
}

// Inject applies f to node. When the injection fails part-way, what was
// done is healed before the error returns.
func Inject(ctx context.Context, f Fault, t Target, node string) (*Injected, error) {
	in := &Injected{Fault: f, Target: t, Node: node, At: time.Now()}
	if err := f.Inject(ctx, t, node); err != nil {
		if herr := in.Close(); herr != nil {
			err = fmt.Errorf("%w (and healing what was done: %v)", err, herr)
		}
		return nil, fmt.Errorf("injecting %s on %s: %w", f.Name(), node, err)
	}
	return in, nil
}

// Heal undoes the fault, once; later calls return the first result.
func (in *Injected) Heal(ctx context.Context) error {
	in.once.Do(func() {
		in.err = in.Fault.Heal(ctx, in.Target, in.Node)
		if in.err != nil {
			in.err = fmt.Errorf("healing %s on %s: %w", in.Fault.Name(), in.Node, in.err)
		}
	})
	return in.err
}

// Close heals the fault unless Heal did already. It runs on a context of
// its own, so that a cancelled caller (Ctrl-C, a timeout) still leaves no
// member stopped, paused or cut off.
func (in *Injected) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), healTimeout)
	defer cancel()
	return in.Heal(ctx)
}
