package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/backup"
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

// Restore brings the whole cluster back to a point in time: it checks the
// target against the repository, asks confirm, then replaces every Patroni
// node: the DCS state is cleared, the bootstrap leader is restored by
// pgBackRest and promoted at the target, and the replicas are cloned from it.
// Every check happens before anything is changed.
func (p *Provisioner) Restore(ctx context.Context, topo topology.Cluster, target topology.RestoreTarget, timeout time.Duration,
	confirm func(RestorePlan) bool) (RestorePlan, error) {
	plan := RestorePlan{Target: target}
	p.Progress.Start("Reading the backup repository")
	repo, err := p.Repo(ctx, topo)
	if err != nil {
		p.Progress.End(false, "")
		return plan, err
	}
	if len(repo.Backups) == 0 {
		p.Progress.End(false, "")
		return plan, fmt.Errorf("cluster %s: %w, so there is nothing to restore; take one with `pgha backup --name %s`", topo.Name, backup.ErrNoBackup, topo.Name)
	}
	// A target before the oldest backup is refused at once. Then, on a
	// running primary, the current WAL segment is closed and archived: the
	// newest writes become restorable, and the window ends now.
	plan.Window, _ = repo.Window(time.Time{})
	if err := checkTarget(plan.Window, target, ""); err != nil {
		p.Progress.End(false, "")
		return plan, err
	}
	latest, currentLSN, err := p.archiveNow(ctx, topo)
	if err != nil {
		p.Progress.End(false, "")
		return plan, err
	}
	plan.Window.Latest = latest
	p.Progress.End(true, fmt.Sprintf("%d backups; restorable from %s", len(repo.Backups), plan.Window))
	if err := checkTarget(plan.Window, target, currentLSN); err != nil {
		return plan, err
	}
	plan.Backup = chooseBackup(repo.Backups, target)
	for _, n := range topo.Patroni {
		plan.Replaced = append(plan.Replaced, n.Name)
	}

	// etcd must answer before anything is removed: its keys are cleared.
	etcd, err := verify.NewEtcdClient(topo.EtcdEndpointsHost())
	if err != nil {
		return plan, err
	}
	defer etcd.Close()
	if _, err := keyExists(ctx, etcd, topo.KeyPrefix()+"initialize"); err != nil {
		return plan, fmt.Errorf("etcd must be up for a restore: %w", err)
	}
	if confirm != nil && !confirm(plan) {
		return plan, ErrRestoreDeclined
	}

	p.Progress.Start(fmt.Sprintf("Removing Patroni nodes and data of %s", topo.Name))
	start := time.Now()
	if err := p.removePatroni(ctx, topo); err != nil {
		p.Progress.End(false, "")
		return plan, err
	}
	// Patroni bootstraps only a cluster that has no state in the DCS.
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = etcd.Delete(dctx, topo.KeyPrefix(), clientv3.WithPrefix())
	cancel()
	if err != nil {
		p.Progress.End(false, "")
		return plan, fmt.Errorf("clearing %s in etcd: %w", topo.KeyPrefix(), err)
	}
	p.Progress.End(true, fmt.Sprintf("Removed %d Patroni nodes, their volumes and keys %s (%s)", len(topo.Patroni), topo.KeyPrefix(), since(start)))

	p.Progress.Info(fmt.Sprintf("Restoring %s to %s from backup %s", topo.Name, target, plan.Backup.Label))
	topo.Restore = &target
	if _, err := p.Up(ctx, topo, timeout); err != nil {
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
func (p *Provisioner) archiveNow(ctx context.Context, topo topology.Cluster) (time.Time, string, error) {
	primary, _ := verify.Primary(ctx, topo)
	if primary == "" {
		p.Progress.Warn("no running primary: WAL written since the last archived segment cannot be restored")
		return time.Time{}, "", nil
	}
	store, err := secrets.For(topo.Name)
	if err != nil {
		return time.Time{}, "", err
	}
	sec, err := store.Load()
	if err != nil {
		return time.Time{}, "", err
	}
	node, _ := topo.PatroniNode(primary)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(cctx, verify.ConnString(node.PGPort, sec.SuperuserPassword))
	if err != nil {
		return time.Time{}, "", fmt.Errorf("connecting to the primary %s: %w", primary, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var lsn string
	now := time.Now()
	if err := conn.QueryRow(cctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return time.Time{}, "", fmt.Errorf("reading the WAL position of %s: %w", primary, err)
	}
	if _, err := verify.ArchiveCurrentWAL(cctx, conn, primary); err != nil {
		return time.Time{}, "", fmt.Errorf("archiving the newest WAL before the restore: %w", err)
	}
	return now, lsn, nil
}

// removePatroni removes the cluster's Patroni containers and data volumes.
func (p *Provisioner) removePatroni(ctx context.Context, topo topology.Cluster) error {
	var errs []error
	for _, n := range topo.Patroni {
		name := topo.ContainerName(n.Name)
		if c, err := p.inspect(ctx, topo.Name, name); err != nil {
			return err
		} else if c.State != StateMissing && !c.Ours {
			return fmt.Errorf("container %s does not belong to cluster %s; pgha will not remove it", name, topo.Name)
		} else if c.State != StateMissing {
			if err := p.Docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) {
				errs = append(errs, fmt.Errorf("removing %s: %w", name, err))
				continue
			}
		}
		if err := p.Docker.VolumeRemove(ctx, topo.VolumeName(n.Name), true); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("removing volume %s: %w", topo.VolumeName(n.Name), err))
		}
	}
	return errors.Join(errs...)
}
