package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/topology"
)

// PgBackRestLockError is pgBackRest's exit code when another of its
// processes holds the lock it needs.
const PgBackRestLockError = 50

// ensureStanza creates the cluster's pgBackRest stanza from the primary; on
// a stanza that exists and matches the database it changes nothing.
func (d *Docker) ensureStanza(ctx context.Context, topo topology.Cluster, primary string) (string, error) {
	eng, name, err := d.at(ctx, topo, primary)
	if err != nil {
		return "", err
	}
	// An archive-push running at the same moment holds the stanza's lock
	// (pgBackRest exit code 50): it is released within a second or so.
	var res engine.ExecResult
	err = poll.For(ctx, 5*time.Second, 250*time.Millisecond, func(context.Context) (bool, error) {
		var err error
		res, err = eng.Exec(ctx, name, engine.ExecOptions{}, "pgbackrest", "stanza-create")
		return err != nil || res.ExitCode != PgBackRestLockError, err
	})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = nil // still locked after the retries: res says so
	}
	if err == nil {
		err = res.Err("pgbackrest stanza-create in " + topo.ContainerName(primary))
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("pgBackRest stanza %s ready in bucket %s (WAL archiving on)", topo.Stanza(), topo.ObjectStore.Bucket), nil
}
