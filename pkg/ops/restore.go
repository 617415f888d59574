package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/backup"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/pgha/pgha/pkg/verify"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// RestorePlan is what a restore will do, shown before anything changes.
type RestorePlan struct {
	Target topology.RestoreTarget
	Window backup.Window
	// Backup is the newest backup before the target, which pgBackRest restores.
	Backup backup.Backup
	// Replaced are the Patroni nodes whose data is replaced.
	Replaced []string
}

// ErrRestoreDeclined: the user said no; nothing was changed.
var ErrRestoreDeclined = errors.New("restore declined; nothing was changed")

// Pending is a restore that has begun and not finished, kept in the
// cluster's state directory: re-running `pgha restore` completes it, `pgha
// restore --abort` goes back to the data before it, and `pgha up` refuses to
// bootstrap over it.
type Pending struct {
	Target topology.RestoreTarget `json:"target"`
	// OldGeneration's volumes hold the data from before the restore, kept
	// until the restored cluster verifies healthy; NewGeneration's receive it.
	OldGeneration int       `json:"oldGeneration"`
	NewGeneration int       `json:"newGeneration"`
	Began         time.Time `json:"began"`
	// Keys are the cluster's keys in etcd without a lease (initialize,
	// config, history, ...), as they were before the restore: a rollback
	// puts them back, so that Patroni resumes the old data.
	Keys map[string]string `json:"keys"`
}

// PendingRestore reads the cluster's pending restore; nil when there is none.
func PendingRestore(cluster string) (*Pending, error) {
	store, err := secrets.For(cluster)
	if err != nil {
		return nil, err
	}
	var p Pending
	found, err := store.ReadJSON(secrets.PendingRestoreFile, &p)
	if err != nil || !found {
		return nil, err
	}
	return &p, nil
}

// ErrPending says what to do about a pending restore.
func ErrPending(cluster string, p *Pending) error {
	return fmt.Errorf("a restore of cluster %s to %s began at %s and did not finish; run `pgha restore --name %s` to complete it, or `pgha restore --name %s --abort` to go back to the data from before it",
		cluster, p.Target, p.Began.Local().Format(time.DateTime), cluster, cluster)
}

// Restore brings the whole cluster back to a point in time. It checks the
// target against the repository and asks confirm, changing nothing until
// then. Then it stops writes on the primary (new sessions are read-only,
// open ones are ended) and archives its last WAL, so that every write
// acknowledged before the restore is restorable; records the restore as
// pending; replaces the Patroni containers, with the data restored into new
// volumes: the bootstrap leader is restored by pgBackRest and promoted at
// the target, the replicas are cloned from it. Only once the restored
// cluster verifies healthy are the old volumes removed. When the restore
// fails, the cluster goes back to its old volumes and keys. A restore that
// was interrupted is completed by calling Restore again (target may then be
// zero).
func (o *Ops) Restore(ctx context.Context, target *topology.RestoreTarget, timeout time.Duration,
	confirm func(RestorePlan) bool) (RestorePlan, verify.Report, error) {
	pending, err := PendingRestore(o.Topo.Name)
	if err != nil {
		return RestorePlan{}, verify.Report{}, err
	}
	if pending != nil {
		if target != nil && *target != pending.Target {
			return RestorePlan{Target: *target}, verify.Report{}, fmt.Errorf("%w; it cannot be replaced by a restore to %s", ErrPending(o.Topo.Name, pending), target)
		}
		o.Progress.Info(fmt.Sprintf("Completing the restore of %s to %s begun at %s", o.Topo.Name, pending.Target, pending.Began.Local().Format(time.DateTime)))
		return o.complete(ctx, pending, timeout)
	}
	if target == nil {
		return RestorePlan{}, verify.Report{}, fmt.Errorf("cluster %s has no pending restore: give --to-time, --to-lsn or --latest", o.Topo.Name)
	}
	plan, err := o.prepare(ctx, *target, confirm)
	if err != nil {
		return plan, verify.Report{}, err
	}
	pending, err = o.begin(ctx, *target)
	if err != nil {
		return plan, verify.Report{}, err
	}
	_, rep, err := o.complete(ctx, pending, timeout)
	return plan, rep, err
}

// prepare reads the repository and etcd and asks for confirmation; it
// changes nothing.
func (o *Ops) prepare(ctx context.Context, target topology.RestoreTarget, confirm func(RestorePlan) bool) (RestorePlan, error) {
	topo := o.Topo
	plan := RestorePlan{Target: target}
	err := progress.Step(o.Progress, "Reading the backup repository", func() (string, error) {
		repo, err := o.Repo(ctx)
		if err != nil {
			return "", err
		}
		if len(repo.Backups) == 0 {
			return "", fmt.Errorf("cluster %s: %w, so there is nothing to restore; take one with `pgha backup --name %s`", topo.Name, backup.ErrNoBackup, topo.Name)
		}
		// The window ends now: the last WAL is archived once writes stop.
		plan.Window, _ = repo.Window(time.Time{})
		plan.Window.Latest = time.Now()
		if err := checkTarget(plan.Window, target, ""); err != nil {
			return "", err
		}
		plan.Backup = chooseBackup(repo.Backups, target)
		return fmt.Sprintf("%d backups; restorable from %s", len(repo.Backups), plan.Window), nil
	})
	if err != nil {
		return plan, err
	}
	plan.Replaced = topo.PatroniNames()
	// etcd must answer before anything changes: its keys are replaced.
	etcd, err := o.Access.Etcd()
	if err != nil {
		return plan, err
	}
	defer etcd.Close()
	if _, err := clients.KeyExists(ctx, etcd, topo.KeyPrefix()+"initialize"); err != nil {
		return plan, fmt.Errorf("etcd must be up for a restore: %w", err)
	}
	if confirm != nil && !confirm(plan) {
		return plan, ErrRestoreDeclined
	}
	return plan, nil
}

// begin saves the cluster's keys, stops writes, archives the last WAL and
// records the restore as pending. When it fails, writes are allowed again
// and nothing else has changed.
func (o *Ops) begin(ctx context.Context, target topology.RestoreTarget) (*Pending, error) {
	topo := o.Topo
	p := &Pending{Target: target, OldGeneration: topo.DataGeneration, NewGeneration: topo.DataGeneration + 1, Began: time.Now().UTC()}
	etcd, err := o.Access.Etcd()
	if err != nil {
		return nil, err
	}
	defer etcd.Close()
	if p.Keys, err = unleasedKeys(ctx, etcd, topo.KeyPrefix()); err != nil {
		return nil, err
	}
	store, err := secrets.For(topo.Name)
	if err != nil {
		return nil, err
	}
	// Recorded before writes stop: an interrupt from here on is completed
	// (or aborted) by pgha restore, never left half-done.
	if err := store.WriteJSON(secrets.PendingRestoreFile, p); err != nil {
		return nil, fmt.Errorf("recording the pending restore: %w", err)
	}
	err = progress.Step(o.Progress, "Stopping writes and archiving the last WAL", func() (string, error) {
		return o.freezeAndArchive(ctx)
	})
	if err != nil {
		o.unfreeze(ctx)
		_ = store.RemoveFile(secrets.PendingRestoreFile)
		return nil, fmt.Errorf("%w; nothing was changed", err)
	}
	return p, nil
}

// complete replaces the Patroni nodes with the restored data and verifies
// the cluster; on failure it goes back to the old data.
func (o *Ops) complete(ctx context.Context, p *Pending, timeout time.Duration) (RestorePlan, verify.Report, error) {
	plan := RestorePlan{Target: p.Target, Replaced: o.Topo.PatroniNames()}
	topo := o.Topo
	topo.DataGeneration = p.NewGeneration
	err := progress.Step(o.Progress, fmt.Sprintf("Replacing the Patroni nodes of %s (the old data is kept)", topo.Name), func() (string, error) {
		if err := o.clear(ctx, topo); err != nil {
			return "", err
		}
		return fmt.Sprintf("Removed %d Patroni containers and the keys %s; volumes of generation %d kept", len(topo.Patroni), topo.KeyPrefix(), p.OldGeneration), nil
	})
	if err != nil {
		return plan, verify.Report{}, err
	}
	o.Progress.Info(fmt.Sprintf("Restoring %s to %s into new volumes (generation %d)", topo.Name, p.Target, p.NewGeneration))
	target := p.Target
	topo.Restore = &target
	rep := verify.Report{}
	if _, err = o.Backend.Up(ctx, topo, timeout); err == nil {
		err = progress.Step(o.Progress, "Verifying the restored cluster", func() (string, error) {
			// The restored database, not a new one: a node that ran initdb
			// would have a system identifier of its own.
			if err := o.sameDatabase(ctx); err != nil {
				return "", err
			}
			rep = verify.RunUntil(ctx, o.checks(topo), time.Minute)
			if !rep.OK {
				return "", fmt.Errorf("the restored cluster does not verify healthy (%d checks failed)", len(rep.Failed()))
			}
			return fmt.Sprintf("The restored cluster verifies healthy: %d checks passed", len(rep.Checks)), nil
		})
	}
	if err != nil {
		if ctx.Err() != nil {
			return plan, rep, fmt.Errorf("%w; the restore is pending: run `pgha restore --name %s` to complete it, or add --abort to go back", ctx.Err(), topo.Name)
		}
		rctx, cancel := poll.Detached(ctx, 10*time.Minute)
		defer cancel()
		if rerr := o.rollback(rctx, p); rerr != nil {
			return plan, rep, fmt.Errorf("the restore failed: %v; going back to the old data failed too: %v; the old volumes are kept (generation %d); try `pgha restore --name %s --abort`", err, rerr, p.OldGeneration, topo.Name)
		}
		return plan, rep, fmt.Errorf("the restore failed: %w; the cluster is back on its data from before the restore", err)
	}
	err = progress.Step(o.Progress, "Removing the data from before the restore", func() (string, error) {
		old := topo
		old.DataGeneration = p.OldGeneration
		if err := o.removeVolumes(ctx, old); err != nil {
			return "", err
		}
		store, err := secrets.For(topo.Name)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Removed the volumes of generation %d", p.OldGeneration), store.RemoveFile(secrets.PendingRestoreFile)
	})
	return plan, rep, err
}

// Abort gives up a pending restore: the cluster goes back to the data and
// keys from before it.
func (o *Ops) Abort(ctx context.Context, timeout time.Duration) error {
	p, err := PendingRestore(o.Topo.Name)
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("cluster %s has no pending restore", o.Topo.Name)
	}
	return o.rollback(ctx, p)
}

// rollback goes back to the data from before the restore: the new volumes
// go, the old keys come back, the Patroni nodes start on the old volumes,
// and writes are allowed again (the saved config predates the stop).
func (o *Ops) rollback(ctx context.Context, p *Pending) error {
	topo := o.Topo
	return progress.Step(o.Progress, fmt.Sprintf("Going back to the data of %s from before the restore", topo.Name), func() (string, error) {
		restored := topo
		restored.DataGeneration = p.NewGeneration
		if err := o.clear(ctx, restored); err != nil {
			return "", err
		}
		if err := o.removeVolumes(ctx, restored); err != nil {
			return "", err
		}
		etcd, err := o.Access.Etcd()
		if err != nil {
			return "", err
		}
		defer etcd.Close()
		for k, v := range p.Keys {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := etcd.Put(pctx, k, v)
			cancel()
			if err != nil {
				return "", fmt.Errorf("putting back %s in etcd: %w", k, err)
			}
		}
		old := topo
		old.DataGeneration = p.OldGeneration
		if _, err := o.Backend.Up(ctx, old, 5*time.Minute); err != nil {
			return "", err
		}
		// A replica may still be following the new timeline of the node
		// that took the lead: done when the cluster verifies healthy.
		if rep := verify.RunUntil(ctx, o.checks(old), 2*time.Minute); !rep.OK {
			return "", fmt.Errorf("the cluster is back on its old data but does not verify healthy yet (%d checks failed); see `pgha verify --name %s`", len(rep.Failed()), topo.Name)
		}
		store, err := secrets.For(topo.Name)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Cluster %s is back on its data from before the restore", topo.Name), store.RemoveFile(secrets.PendingRestoreFile)
	})
}

// clear removes the Patroni containers (not their volumes) and the
// cluster's keys in etcd: Patroni bootstraps only a cluster that has no
// state in the DCS.
func (o *Ops) clear(ctx context.Context, topo topology.Cluster) error {
	if err := o.Backend.RemoveMembers(ctx, topo, topo.PatroniNames()); err != nil {
		return err
	}
	etcd, err := o.Access.Etcd()
	if err != nil {
		return err
	}
	defer etcd.Close()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := etcd.Delete(dctx, topo.KeyPrefix(), clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("clearing %s in etcd: %w", topo.KeyPrefix(), err)
	}
	return nil
}

// removeVolumes removes the Patroni nodes' volumes of topo's generation.
func (o *Ops) removeVolumes(ctx context.Context, topo topology.Cluster) error {
	return o.Backend.RemoveVolumes(ctx, topo, topo.PatroniNames())
}

// sameDatabase checks that the running primary holds the database the
// repository backs up (its system identifier).
func (o *Ops) sameDatabase(ctx context.Context) error {
	repo, err := o.Repo(ctx)
	if err != nil {
		return err
	}
	primary, _ := o.Access.Primary(ctx)
	if primary == "" {
		return errors.New("no running primary after the restore")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := o.Access.Connect(cctx, primary)
	if err != nil {
		return fmt.Errorf("connecting to the restored primary %s: %w", primary, err)
	}
	defer closeConn(conn)
	var id uint64
	if err := conn.QueryRow(cctx, "SELECT system_identifier FROM pg_control_system()").Scan(&id); err != nil {
		return fmt.Errorf("reading the system identifier of %s: %w", primary, err)
	}
	if repo.SystemID != 0 && id != repo.SystemID {
		return fmt.Errorf("the primary %s holds database %d, not the backed-up database %d: it was not restored", primary, id, repo.SystemID)
	}
	return nil
}

// checks is what verifies the restored cluster.
func (o *Ops) checks(topo topology.Cluster) verify.Target {
	acc := o.Access
	acc.Topo = topo
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kind, _ := o.Backend.StoreKind(ctx, topo)
	return verify.Target{Access: acc, StoreKind: kind, MaxLag: 1 << 20}
}

// unleasedKeys reads the keys under prefix that have no lease.
func unleasedKeys(ctx context.Context, etcd *clientv3.Client, prefix string) (map[string]string, error) {
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := etcd.Get(gctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading %s from etcd: %w", prefix, err)
	}
	keys := map[string]string{}
	for _, kv := range resp.Kvs {
		if kv.Lease == 0 {
			keys[string(kv.Key)] = string(kv.Value)
		}
	}
	return keys, nil
}

// checkTarget refuses a target outside the window.
func checkTarget(w backup.Window, target topology.RestoreTarget, currentLSN string) error {
	switch {
	case !target.Time.IsZero():
		return w.CheckTime(target.Time)
	case target.LSN != "":
		return w.CheckLSN(target.LSN, currentLSN)
	}
	return nil
}

// chooseBackup names the backup pgBackRest restores for the target: the
// newest that finished before it.
func chooseBackup(backups []backup.Backup, target topology.RestoreTarget) backup.Backup {
	want, _ := backup.ParseLSN(target.LSN)
	for i := len(backups) - 1; i >= 0; i-- {
		b := backups[i]
		stop, _ := backup.ParseLSN(b.LSNStop)
		switch {
		case !target.Time.IsZero() && b.Stop.Before(target.Time),
			target.LSN != "" && stop <= want,
			target.Time.IsZero() && target.LSN == "":
			return b
		}
	}
	return backups[0]
}

// readOnly is the Patroni dynamic setting that stops writes for a restore.
var readOnly = map[string]any{"postgresql": map[string]any{"parameters": map[string]any{"default_transaction_read_only": "on"}}}

// freezeAndArchive stops writes on the running primary and archives its
// last WAL: new sessions are read-only (Patroni's dynamic configuration),
// open client sessions are ended, then the current segment is closed and
// archived. Every write acknowledged before is in the archive.
func (o *Ops) freezeAndArchive(ctx context.Context) (string, error) {
	primary, _ := o.Access.Primary(ctx)
	if primary == "" {
		o.Progress.Warn("no running primary: WAL written since the last archived segment cannot be restored")
		return "No running primary: writes were stopped already", nil
	}
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := o.Access.PatchConfig(cctx, primary, readOnly); err != nil {
		return "", fmt.Errorf("making %s read-only: %w", primary, err)
	}
	conn, err := o.Access.Connect(cctx, primary)
	if err != nil {
		return "", fmt.Errorf("connecting to the primary %s: %w", primary, err)
	}
	defer closeConn(conn)
	// Patroni applies the setting on its next loop; wait until it is in force.
	err = poll.Until(cctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var v string
		err := conn.QueryRow(ctx, "SELECT setting FROM pg_settings WHERE name = 'default_transaction_read_only'").Scan(&v)
		return err == nil && v == "on", nil
	})
	if err != nil {
		return "", fmt.Errorf("waiting for %s to turn read-only: %w", primary, err)
	}
	if _, err := conn.Exec(cctx, "SET default_transaction_read_only = off"); err != nil {
		return "", err
	}
	var ended int
	if err := conn.QueryRow(cctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name NOT LIKE 'Patroni%'`).Scan(&ended); err != nil {
		return "", fmt.Errorf("ending the client sessions on %s: %w", primary, err)
	}
	seg, err := clients.ArchiveCurrentWAL(cctx, conn, primary)
	if err != nil {
		return "", fmt.Errorf("archiving the newest WAL before the restore: %w", err)
	}
	return fmt.Sprintf("Writes stopped on %s (%d sessions ended); %s", primary, ended, seg), nil
}

// unfreeze allows writes again after a restore that did not start.
func (o *Ops) unfreeze(ctx context.Context) {
	primary, _ := o.Access.Primary(ctx)
	if primary == "" {
		return
	}
	cctx, cancel := poll.Detached(ctx, 30*time.Second)
	defer cancel()
	off := map[string]any{"postgresql": map[string]any{"parameters": map[string]any{"default_transaction_read_only": nil}}}
	if err := o.Access.PatchConfig(cctx, primary, off); err != nil {
		o.Progress.Warn(fmt.Sprintf("allowing writes on %s again failed: %v; run `pgha up --name %s`, then PATCH /config to remove default_transaction_read_only", primary, err, o.Topo.Name))
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
