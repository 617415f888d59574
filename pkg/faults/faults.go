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

// Promises say what a fault does, so that tests and tools can rely on it.
type Promises struct {
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
}

// registry lists every fault, in the order help shows them.
var registry = []Fault{Stop{}, Kill{}, Pause{}, Partition{}}

// Lookup returns the fault named name, or an error that lists them all.
func Lookup(name string) (Fault, error) {
	for _, f := range registry {
		if f.Name() == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("unknown fault %q: use %s", name, strings.Join(Names(), ", "))
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
