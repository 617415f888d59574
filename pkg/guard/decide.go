// Package guard is the fencing guard: a small process that runs beside a
// cluster, watches the Docker engine's events for the cluster's Patroni
// containers and, when the engine confirms that the primary's container is
// dead, deletes that member's leader key in etcd. Patroni's replicas then
// elect a new leader at once instead of waiting for the leader's lease to
// expire (ttl, at least 20 s): a lease cannot tell a dead primary from a slow
// one, the engine can. The guard never touches a key that a live member holds.
package guard

import (
	"fmt"

	"github.com/docker/docker/api/types/container"

	"github.com/pgha/pgha/pkg/topology"
)

// Container is what the engine says about one container, as the decision needs it.
type Container struct {
	Found      bool
	Name       string // without the engine's leading "/"
	Labels     map[string]string
	Status     container.ContainerState // created, running, paused, restarting, removing, exited, dead
	Running    bool                     // true also while paused
	Paused     bool
	Restarting bool
	// ExitCode is the die event's, or read from the list's status; -1
	// when unknown.
	ExitCode int
	// ByDieEvent: the exit is the die event's word, the list still lagging.
	ByDieEvent bool
}

// LeaderKey is the leader key as read from etcd.
type LeaderKey struct {
	Exists      bool
	Value       string // the member holding the leadership
	ModRevision int64
}

// Facts are everything a decision rests on.
type Facts struct {
	Config    Config
	Event     string // die, pause or reconcile
	Container Container
	Leader    LeaderKey
}

// Verdict is a decision: delete the leader key or not, and why.
type Verdict struct {
	Delete bool
	Member string
	Reason string
}

// Events the guard decides on.
const (
	EventDie       = "die"
	EventPause     = "pause"
	EventReconcile = "reconcile"
)

// Decide says whether the leader key must go. It deletes only when every
// check passes: the container is one of this cluster's Patroni containers as
// pgha created it, the engine reports it neither running nor paused nor
// restarting, and the leader key names its member. Everything else leaves
// the key to Patroni's lease.
func Decide(f Facts) Verdict {
	c := f.Container
	member := c.Labels[topology.LabelNode]
	v := Verdict{Member: member}
	keep := func(format string, a ...any) Verdict {
		v.Reason = fmt.Sprintf(format, a...)
		return v
	}
	if !c.Found {
		// Removed: nothing to confirm its end with; a container of the same
		// name may already be starting again.
		return keep("the container is gone, so its death cannot be confirmed; the lease decides")
	}
	if got := c.Labels[topology.LabelCluster]; got != f.Config.Cluster {
		return keep("container %s belongs to cluster %q, not %q", c.Name, got, f.Config.Cluster)
	}
	if role := c.Labels[topology.LabelRole]; role != topology.RolePatroni {
		return keep("container %s has role %q, not %s", c.Name, role, topology.RolePatroni)
	}
	if m, ok := f.Config.Members[memberContainer(c)]; !ok || m != member {
		return keep("container %s (node label %q) is not a Patroni node pgha created for this cluster", c.Name, member)
	}
	switch {
	case c.Paused || f.Event == EventPause:
		return keep("%s is paused: frozen, not dead, and it may resume as the primary; the lease decides", member)
	case c.Restarting:
		return keep("%s is restarting", member)
	case c.Running:
		return keep("%s is running (again)", member)
	case c.Status != container.StateExited && c.Status != container.StateDead:
		// created or removing: not a confirmed end of a run.
		return keep("%s is %q, not a confirmed exit", member, c.Status)
	}
	dead := fmt.Sprintf("%s is %s", member, describeExit(c))
	switch {
	case !f.Leader.Exists:
		return keep("%s; no leader key, nothing to do", dead)
	case f.Leader.Value != member:
		return keep("%s; the leader key names %s, a live member's key is never touched", dead, f.Leader.Value)
	}
	v.Delete = true
	v.Reason = fmt.Sprintf("%s and the leader key still names it: delete it (value and revision %d compared)", dead, f.Leader.ModRevision)
	return v
}

// swarmServiceLabel names the service of a swarm task's container.
const swarmServiceLabel = "com.docker.swarm.service.name"

// memberContainer is the name pgha gave the member: the container's own on
// one engine; on a swarm the task's container is <service>.<slot>.<task>,
// and the service carries the name.
func memberContainer(c Container) string {
	if svc := c.Labels[swarmServiceLabel]; svc != "" {
		return svc
	}
	return c.Name
}

func describeExit(c Container) string {
	source := "the engine"
	if c.ByDieEvent {
		source = "the engine's die event"
	}
	if c.ExitCode < 0 {
		return fmt.Sprintf("%s according to %s", c.Status, source)
	}
	return fmt.Sprintf("%s (exit code %d) according to %s", c.Status, c.ExitCode, source)
}
