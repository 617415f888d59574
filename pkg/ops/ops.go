// Package ops holds the day-2 operations on a running cluster: backups,
// the repository's view, and point-in-time restore. pgBackRest runs inside
// the Patroni containers, where its configuration (the PGBACKREST_*
// environment) and PostgreSQL's data are.
package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
)

// Ops runs day-2 operations on one cluster.
type Ops struct {
	Backend  cluster.Backend
	Topo     topology.Cluster
	Access   clients.Access
	Progress progress.Progress
}

// New prepares the operations of a cluster, with its credentials.
func New(b cluster.Backend, topo topology.Cluster, p progress.Progress) (*Ops, error) {
	acc, err := cluster.AccessFor(b, topo)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = progress.Discard{}
	}
	return &Ops{Backend: b, Topo: topo, Access: acc, Progress: p}, nil
}

// ErrNoPrimary: the cluster has no running primary to back up or switch WAL on.
var ErrNoPrimary = errors.New("no node is the running primary")

// exec runs a command in a member's container.
func (o *Ops) exec(ctx context.Context, node string, opts engine.ExecOptions, cmd ...string) (engine.ExecResult, error) {
	eng, name := o.Backend.Where(o.Topo, node)
	return eng.Exec(ctx, name, opts, cmd...)
}

// storeContainer is the engine's word on the object store's container.
func (o *Ops) storeContainer(ctx context.Context) (engine.Container, error) {
	kind, err := o.Backend.StoreKind(ctx, o.Topo)
	if err != nil {
		return engine.Container{}, err
	}
	if kind == "" {
		return engine.Container{}, fmt.Errorf("cluster %s has no object store container; run `pgha up --name %s`", o.Topo.Name, o.Topo.Name)
	}
	return o.Backend.Member(ctx, o.Topo, kind)
}

// storeRunning refuses to go on when the object store container is not running.
func (o *Ops) storeRunning(ctx context.Context) error {
	c, err := o.storeContainer(ctx)
	if err != nil {
		return err
	}
	if !c.Running() {
		return fmt.Errorf("the object store %s is %s, so the backup repository cannot be reached; start it with `pgha up --name %s`",
			c.Name, c.Describe(), o.Topo.Name)
	}
	return nil
}
