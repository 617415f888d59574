package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/backup"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
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

// Restore brings the whole cluster back to a point in time: it checks the
// target against the repository, asks confirm, then replaces every Patroni
// node: the DCS state is cleared, the bootstrap leader is restored by
// pgBackRest and promoted at the target, and the replicas are cloned from it.
// Every check happens before anything is changed.
func (o *Ops) Restore(ctx context.Context, target topology.RestoreTarget, timeout time.Duration,
	confirm func(RestorePlan) bool) (RestorePlan, error) {
	topo := o.Topo
	plan := RestorePlan{Target: target}
	o.Progress.Start("Reading the backup repository")
	repo, err := o.Repo(ctx)
	if err != nil {
		o.Progress.End(false, "")
		return plan, err
	}
	if len(repo.Backups) == 0 {
		o.Progress.End(false, "")
		return plan, fmt.Errorf("cluster %s: %w, so there is nothing to restore; take one with `pgha backup --name %s`", topo.Name, backup.ErrNoBackup, topo.Name)
	}
	// A target before the oldest backup is refused at once. Then, on a
	// running primary, the current WAL segment is closed and archived: the
	// newest writes become restorable, and the window ends now.
	plan.Window, _ = repo.Window(time.Time{})
	if err := checkTarget(plan.Window, target, ""); err != nil {
		o.Progress.End(false, "")
		return plan, err
	}
	latest, currentLSN, err := o.archiveNow(ctx)
	if err != nil {
		o.Progress.End(false, "")
		return plan, err
	}
	plan.Window.Latest = latest
	o.Progress.End(true, fmt.Sprintf("%d backups; restorable from %s", len(repo.Backups), plan.Window))
	if err := checkTarget(plan.Window, target, currentLSN); err != nil {
		return plan, err
	}
	plan.Backup = chooseBackup(repo.Backups, target)
	for _, n := range topo.Patroni {
		plan.Replaced = append(plan.Replaced, n.Name)
	}

	// etcd must answer before anything is removed: its keys are cleared.
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

	o.Progress.Start(fmt.Sprintf("Removing Patroni nodes and data of %s", topo.Name))
	start := time.Now()
	if err := o.Backend.RemoveMembers(ctx, topo, topo.PatroniNames(), true); err != nil {
		o.Progress.End(false, "")
		return plan, err
	}
	// Patroni bootstraps only a cluster that has no state in the DCS.
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = etcd.Delete(dctx, topo.KeyPrefix(), clientv3.WithPrefix())
	cancel()
	if err != nil {
		o.Progress.End(false, "")
		return plan, fmt.Errorf("clearing %s in etcd: %w", topo.KeyPrefix(), err)
	}
	o.Progress.End(true, fmt.Sprintf("Removed %d Patroni nodes, their volumes and keys %s (%s)", len(topo.Patroni), topo.KeyPrefix(), progress.Since(start)))

	o.Progress.Info(fmt.Sprintf("Restoring %s to %s from backup %s", topo.Name, target, plan.Backup.Label))
	topo.Restore = &target
	if _, err := o.Backend.Up(ctx, topo, timeout); err != nil {
		return plan, fmt.Errorf("restoring: %w", err)
	}
	return plan, nil
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

// archiveNow switches WAL on the running primary and waits until the segment
// is archived. It returns the time before the switch and the LSN then; both
// are zero when no primary runs (the window's end is then unknown).
func (o *Ops) archiveNow(ctx context.Context) (time.Time, string, error) {
	primary, _ := o.Access.Primary(ctx)
	if primary == "" {
		o.Progress.Warn("no running primary: WAL written since the last archived segment cannot be restored")
		return time.Time{}, "", nil
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := o.Access.Connect(cctx, primary)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("connecting to the primary %s: %w", primary, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var lsn string
	now := time.Now()
	if err := conn.QueryRow(cctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return time.Time{}, "", fmt.Errorf("reading the WAL position of %s: %w", primary, err)
	}
	if _, err := clients.ArchiveCurrentWAL(cctx, conn, primary); err != nil {
		return time.Time{}, "", fmt.Errorf("archiving the newest WAL before the restore: %w", err)
	}
	return now, lsn, nil
}
