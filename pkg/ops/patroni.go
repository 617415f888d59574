package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/topology"
)

// Day-2 operations through Patroni's REST API, named as patronictl names
// them: pause, resume, restart, reinit, history, edit-config.

// Node resolves what a person typed for a Patroni node: its node name
// (patroni2) or its container name (lab-patroni2).
func Node(topo topology.Cluster, arg string) (string, error) {
	for _, n := range topo.Patroni {
		if arg == n.Name || arg == topo.ContainerName(n.Name) {
			return n.Name, nil
		}
	}
	return "", fmt.Errorf("%q is not a Patroni member of cluster %s (members: %s)", arg, topo.Name, strings.Join(topo.PatroniNames(), ", "))
}

// Member resolves any member of the cluster (etcd, Patroni, the object
// store, the guard) by node or container name, for logs.
func Member(topo topology.Cluster, storeKind, arg string) (string, error) {
	all := MemberNames(topo, storeKind)
	for _, n := range all {
		if arg == n || arg == topo.ContainerName(n) {
			return n, nil
		}
	}
	return "", fmt.Errorf("%q is not a member of cluster %s (members: %s)", arg, topo.Name, strings.Join(all, ", "))
}

// Roles reads every node's /patroni at once: the primary and the replicas
// that stream, in topology order.
func (o *Ops) Roles(ctx context.Context) (primary string, replicas []string, err error) {
	for _, n := range o.Topo.Patroni {
		st, err := o.Access.Patroni(ctx, n.Name)
		switch {
		case err != nil:
		case st.Leading():
			primary = n.Name
		case st.Streaming():
			replicas = append(replicas, n.Name)
		}
	}
	if primary == "" {
		return "", replicas, ErrNoPrimary
	}
	return primary, replicas, nil
}

// SetPause turns Patroni's maintenance mode on or off and waits until every
// answering member reports it: while paused, Patroni neither fails over nor
// restarts PostgreSQL.
func (o *Ops) SetPause(ctx context.Context, pause bool, timeout time.Duration) error {
	if err := o.Access.PatchAny(ctx, map[string]any{"pause": pause}); err != nil {
		return err
	}
	var last []string
	err := poll.For(ctx, timeout, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		last = last[:0]
		for _, n := range o.Topo.Patroni {
			st, err := o.Access.Node(ctx, n.Name)
			if err != nil {
				continue // a stopped member has nothing to report
			}
			if st.Pause != pause {
				last = append(last, n.Name)
			}
		}
		return len(last) == 0, nil
	})
	if err != nil && ctx.Err() == nil {
		word := "paused"
		if !pause {
			word = "resumed"
		}
		return fmt.Errorf("members %s did not report %s within %s", strings.Join(last, ", "), word, timeout)
	}
	return err
}

// Paused says whether the cluster is in maintenance mode.
func (o *Ops) Paused(ctx context.Context) (bool, error) {
	cfg, err := o.Access.DynamicConfig(ctx)
	if err != nil {
		return false, err
	}
	p, _ := cfg["pause"].(bool)
	return p, nil
}

// RestartNode restarts one node's PostgreSQL through Patroni and waits until
// it runs again: a primary as the primary, a replica streaming.
func (o *Ops) RestartNode(ctx context.Context, node string, timeout time.Duration) error {
	before, err := o.Access.Node(ctx, node)
	if err != nil {
		return o.notAnswering(ctx, node, err)
	}
	if err := o.Access.Restart(ctx, node); err != nil {
		return fmt.Errorf("restarting %s: %w", node, err)
	}
	return o.waitBack(ctx, node, before, before.Role, timeout)
}

// waitBack waits until a node's PostgreSQL started after before's and runs
// as role (primary running, replica streaming).
func (o *Ops) waitBack(ctx context.Context, node string, before clients.NodeInfo, role string, timeout time.Duration) error {
	var last string
	err := poll.For(ctx, timeout, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		st, err := o.Access.Node(ctx, node)
		last = clients.Describe(st.PatroniState, err)
		if err != nil || st.PostmasterStart == before.PostmasterStart {
			return false, nil
		}
		if role == clients.RolePrimary {
			return st.Leading(), nil
		}
		return st.Streaming(), nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s did not run again as %s within %s (last: %s)", node, role, timeout, last)
	}
	return err
}

// RollingRestart restarts every member with at most one switchover's write
// gap: the streaming replicas one at a time, then a switchover to one of them,
// then the old primary, now a replica. step reports each move.
func (o *Ops) RollingRestart(ctx context.Context, timeout time.Duration, step func(string)) error {
	primary, replicas, err := o.Roles(ctx)
	if err != nil {
		return err
	}
	if len(replicas) == 0 {
		return fmt.Errorf("no replica streams from %s: a rolling restart needs one to switch over to", primary)
	}
	if p, err := o.Paused(ctx); err == nil && p {
		return errors.New("the cluster is paused (maintenance mode): a switchover is refused; `pgha resume` first")
	}
	for _, r := range replicas {
		step("Restarting replica " + r)
		if err := o.RestartNode(ctx, r, timeout); err != nil {
			return err
		}
	}
	target := replicas[0]
	step(fmt.Sprintf("Switching over from %s to %s", primary, target))
	before, err := o.Access.Node(ctx, primary)
	if err != nil {
		return err
	}
	if err := o.Access.Switchover(ctx, primary, target); err != nil {
		return fmt.Errorf("switchover from %s to %s: %w", primary, target, err)
	}
	// The old primary is demoted: its PostgreSQL restarts as a replica, which
	// a pending restart of the primary's settings needs too.
	if err := o.waitBack(ctx, primary, before, clients.RoleReplica, timeout); err != nil {
		return err
	}
	if st, err := o.Access.Node(ctx, target); err != nil || !st.Leading() {
		return fmt.Errorf("%s is not the primary after the switchover (%s)", target, clients.Describe(st.PatroniState, err))
	}
	step("Restarting the old primary " + primary + ", now a replica")
	return o.RestartNode(ctx, primary, timeout)
}

// Reinit rebuilds a replica from the primary (Patroni's reinitialize) and
// waits until it streams again.
func (o *Ops) Reinit(ctx context.Context, node string, timeout time.Duration) error {
	before, err := o.Access.Node(ctx, node)
	if err != nil {
		return o.notAnswering(ctx, node, err)
	}
	if before.Role == clients.RolePrimary {
		return fmt.Errorf("%s is the primary: only a replica can be reinitialised (switch over first: `pgha switchover`)", node)
	}
	if err := o.Access.Reinitialize(ctx, node); err != nil {
		return fmt.Errorf("reinitialising %s: %w", node, err)
	}
	return o.waitBack(ctx, node, before, clients.RoleReplica, timeout)
}

// notAnswering explains a node whose REST API does not answer: most often
// its container is not running.
func (o *Ops) notAnswering(ctx context.Context, node string, err error) error {
	if c, cerr := o.Backend.Member(ctx, o.Topo, node); cerr == nil && !c.Running() {
		return fmt.Errorf("%s: its container %s is %s; `pgha up --name %s` starts it", node, c.Name, c.Describe(), o.Topo.Name)
	}
	return fmt.Errorf("%s: Patroni's REST API does not answer: %v", node, err)
}
