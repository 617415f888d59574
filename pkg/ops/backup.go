package ops

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/backup"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/progress"
)

// BackupOptions says what backup to take.
type BackupOptions struct {
	Type string // full, diff or incr
}

// Backup takes a backup on the current primary, showing pgBackRest's progress,
// and returns it as the repository lists it.
func (o *Ops) Backup(ctx context.Context, opts BackupOptions) (backup.Backup, error) {
	var b backup.Backup
	if err := backup.ValidType(opts.Type); err != nil {
		return b, err
	}
	primary, err := o.backupPrimary(ctx)
	if err != nil {
		return b, err
	}
	topo := o.Topo
	eng, name := o.Backend.Where(topo, primary)
	o.Progress.Start(fmt.Sprintf("Taking a %s backup of %s on %s", opts.Type, topo.Name, primary))
	start := time.Now()
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	storeGone := make(chan string, 1)
	go o.watchStore(bctx, storeGone, cancel)
	res, err := eng.Exec(bctx, name, engine.ExecOptions{OnLine: backupProgress(o.Progress)},
		"pgbackrest", "backup", "--type="+opts.Type, "--log-level-console=detail")
	select {
	case why := <-storeGone:
		stopBackup(ctx, eng, name)
		o.Progress.End(false, "")
		return b, fmt.Errorf("the object store %s; the backup was stopped, and the repository keeps its earlier backups (the next backup resumes or removes the partial one)", why)
	default:
	}
	if ctx.Err() != nil {
		// Interrupted: the exec's stream is closed, but pgBackRest runs on in
		// the container with its lock held until it is stopped.
		stopBackup(ctx, eng, name)
		o.Progress.End(false, "")
		return b, fmt.Errorf("%w; the backup's processes in %s were stopped, and the next backup resumes or removes the partial one", ctx.Err(), name)
	}
	if err == nil {
		err = res.Err("pgbackrest backup")
	}
	if err != nil {
		o.Progress.End(false, "")
		return b, fmt.Errorf("the backup failed; the repository keeps its earlier backups: %w", err)
	}
	repo, err := o.Repo(ctx)
	if err != nil || len(repo.Backups) == 0 {
		o.Progress.End(false, "")
		return b, fmt.Errorf("the backup finished but the repository does not list it: %v", err)
	}
	b = repo.Backups[len(repo.Backups)-1]
	o.Progress.End(true, fmt.Sprintf("Backup %s (%s) taken in %s", b.Label, b.Type, progress.Since(start)))
	return b, nil
}

// backupPrimary is the running primary, after checking that the object store
// is there to take the backup: pgBackRest would otherwise retry for a minute.
func (o *Ops) backupPrimary(ctx context.Context) (string, error) {
	if err := o.storeRunning(ctx); err != nil {
		return "", err
	}
	primary, _ := o.Access.Primary(ctx)
	if primary == "" {
		return "", fmt.Errorf("cluster %s: %w; check it with `pgha verify --name %s`", o.Topo.Name, ErrNoPrimary, o.Topo.Name)
	}
	return primary, nil
}

// watchStore reports, and ends the backup's context, when the object store
// container stops running during a backup: pgBackRest would otherwise wait on
// a vanished address for many minutes (seen here: over ten).
func (o *Ops) watchStore(ctx context.Context, gone chan<- string, stop func()) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c, err := o.storeContainer(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			gone <- fmt.Sprintf("could not be found during the backup (%v)", err)
		case !c.Running():
			gone <- fmt.Sprintf("%s stopped during the backup (%s)", c.Name, c.Describe())
		default:
			continue
		}
		stop()
		return
	}
}

// stopBackup ends the pgBackRest backup processes in a container: the
// command and its local workers (TERM, then KILL for what is left).
// It runs after ctx may have ended, on a deadline of its own.
func stopBackup(ctx context.Context, eng *engine.Engine, name string) {
	ctx, cancel := poll.Detached(ctx, 10*time.Second)
	defer cancel()
	const script = `pkill -TERM -f '^pgbackrest backup'; pkill -TERM -f 'backup:local$'; sleep 2
pkill -KILL -f '^pgbackrest backup'; pkill -KILL -f 'backup:local$'; true`
	_, _ = eng.Exec(ctx, name, engine.ExecOptions{}, "sh", "-c", script)
}

// percent finds pgBackRest's progress in its detail lines, e.g.
// "backup file /var/lib/.../base/5/1249 (440KB, 12.34%) checksum ...".
var percent = regexp.MustCompile(`\(([^,()]+), ([0-9.]+)%\)`)

func backupProgress(pr progress.Progress) func(string) {
	return func(line string) {
		if m := percent.FindStringSubmatch(line); m != nil {
			pr.Detail(fmt.Sprintf("%s%% copied", m[2]))
		} else if i := strings.Index(line, "INFO: "); i >= 0 {
			pr.Detail(line[i+len("INFO: "):])
		}
	}
}

// Repo reads the repository's view of the cluster's stanza, from any running
// Patroni node.
func (o *Ops) Repo(ctx context.Context) (backup.Repo, error) {
	if err := o.storeRunning(ctx); err != nil {
		return backup.Repo{}, err
	}
	var lastErr error
	for _, n := range o.Topo.Patroni {
		res, err := o.exec(ctx, n.Name, engine.ExecOptions{}, "pgbackrest", "info", "--output=json")
		if err == nil {
			err = res.Err("pgbackrest info")
		}
		if err != nil {
			lastErr = err
			continue
		}
		return backup.Parse([]byte(res.Stdout), o.Topo.Stanza())
	}
	return backup.Repo{}, fmt.Errorf("reading the backup repository: %w", lastErr)
}
