package provision

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/backup"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/pgha/pgha/pkg/verify"
)

// pgBackRest runs inside the Patroni containers, where its configuration is
// (the PGBACKREST_* environment) and where PostgreSQL's data is.

// ensureStanza creates the cluster's pgBackRest stanza from the primary; on
// a stanza that exists and matches the database it changes nothing.
func (p *Provisioner) ensureStanza(ctx context.Context, topo topology.Cluster, primary string) (string, error) {
	var res ExecResult
	var err error
	// An archive-push running at the same moment holds the stanza's lock
	// (pgBackRest exit code 50): it is released within a second or so.
	for attempt := 0; attempt < 20; attempt++ {
		res, err = Exec(ctx, p.Docker, topo.ContainerName(primary), nil, "pgbackrest", "stanza-create")
		if err != nil || res.ExitCode != pgBackRestLockError {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err == nil {
		err = res.Err("pgbackrest stanza-create in " + topo.ContainerName(primary))
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("pgBackRest stanza %s ready in bucket %s (WAL archiving on)", topo.Stanza(), topo.ObjectStore.Bucket), nil
}

// pgBackRestLockError is pgBackRest's exit code when another of its
// processes holds the lock it needs.
const pgBackRestLockError = 50

// BackupOptions says what backup to take.
type BackupOptions struct {
	Type string // full, diff or incr
}

// ErrNoPrimary: the cluster has no running primary to back up or switch WAL on.
var ErrNoPrimary = errors.New("no node is the running primary")

// Backup takes a backup on the current primary, showing pgBackRest's progress,
// and returns it as the repository lists it.
func (p *Provisioner) Backup(ctx context.Context, topo topology.Cluster, opts BackupOptions) (backup.Backup, error) {
	var b backup.Backup
	if err := backup.ValidType(opts.Type); err != nil {
		return b, err
	}
	primary, err := p.backupPrimary(ctx, topo)
	if err != nil {
		return b, err
	}
	name := topo.ContainerName(primary)
	p.Progress.Start(fmt.Sprintf("Taking a %s backup of %s on %s", opts.Type, topo.Name, primary))
	start := time.Now()
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	storeGone := make(chan string, 1)
	go p.watchStore(bctx, topo, storeGone, cancel)
	res, err := Exec(bctx, p.Docker, name, backupProgress(p.Progress),
		"pgbackrest", "backup", "--type="+opts.Type, "--log-level-console=detail")
	select {
	case why := <-storeGone:
		p.stopBackup(context.WithoutCancel(ctx), name)
		p.Progress.End(false, "")
		return b, fmt.Errorf("the object store %s; the backup was stopped, and the repository keeps its earlier backups (the next backup resumes or removes the partial one)", why)
	default:
	}
	if err == nil {
		err = res.Err("pgbackrest backup")
	}
	if err != nil {
		p.Progress.End(false, "")
		return b, fmt.Errorf("the backup failed; the repository keeps its earlier backups: %w", err)
	}
	repo, err := p.Repo(ctx, topo)
	if err != nil || len(repo.Backups) == 0 {
		p.Progress.End(false, "")
		return b, fmt.Errorf("the backup finished but the repository does not list it: %v", err)
	}
	b = repo.Backups[len(repo.Backups)-1]
	p.Progress.End(true, fmt.Sprintf("Backup %s (%s) taken in %s", b.Label, b.Type, since(start)))
	return b, nil
}

// backupPrimary is the running primary, after checking that the object store
// is there to take the backup: pgBackRest would otherwise retry for a minute.
func (p *Provisioner) backupPrimary(ctx context.Context, topo topology.Cluster) (string, error) {
	if err := p.storeRunning(ctx, topo); err != nil {
		return "", err
	}
	primary, _ := verify.Primary(ctx, topo)
	if primary == "" {
		return "", fmt.Errorf("cluster %s: %w; check it with `pgha verify --name %s`", topo.Name, ErrNoPrimary, topo.Name)
	}
	return primary, nil
}

// storeRunning refuses to go on when the object store container is not running.
func (p *Provisioner) storeRunning(ctx context.Context, topo topology.Cluster) error {
	c, err := p.storeContainer(ctx, topo)
	if err != nil {
		return err
	}
	if !c.Running() {
		return fmt.Errorf("the object store %s is %s, so the backup repository cannot be reached; start it with `pgha up --name %s`",
			c.Name, c.Describe(), topo.Name)
	}
	return nil
}

// storeContainer inspects the cluster's object store container.
func (p *Provisioner) storeContainer(ctx context.Context, topo topology.Cluster) (Container, error) {
	kind, err := p.storeKindOf(ctx, topo)
	if err != nil {
		return Container{}, err
	}
	if kind == "" {
		return Container{}, fmt.Errorf("cluster %s has no object store container; run `pgha up --name %s`", topo.Name, topo.Name)
	}
	return p.inspect(ctx, topo.Name, topo.ContainerName(kind))
}

// watchStore reports, and ends the backup's context, when the object store
// container stops running during a backup: pgBackRest would otherwise wait on
// a vanished address for many minutes (seen here: over ten).
func (p *Provisioner) watchStore(ctx context.Context, topo topology.Cluster, gone chan<- string, stop func()) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c, err := p.storeContainer(ctx, topo)
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
func (p *Provisioner) stopBackup(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	const script = `pkill -TERM -f '^pgbackrest backup'; pkill -TERM -f 'backup:local$'; sleep 2
pkill -KILL -f '^pgbackrest backup'; pkill -KILL -f 'backup:local$'; true`
	_, _ = Exec(ctx, p.Docker, name, nil, "sh", "-c", script)
}

// percent finds pgBackRest's progress in its detail lines, e.g.
// "backup file /var/lib/.../base/5/1249 (440KB, 12.34%) checksum ...".
var percent = regexp.MustCompile(`\(([^,()]+), ([0-9.]+)%\)`)

func backupProgress(pr Progress) func(string) {
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
func (p *Provisioner) Repo(ctx context.Context, topo topology.Cluster) (backup.Repo, error) {
	if err := p.storeRunning(ctx, topo); err != nil {
		return backup.Repo{}, err
	}
	var lastErr error
	for _, n := range topo.Patroni {
		res, err := Exec(ctx, p.Docker, topo.ContainerName(n.Name), nil, "pgbackrest", "info", "--output=json")
		if err == nil {
			err = res.Err("pgbackrest info")
		}
		if err != nil {
			lastErr = err
			continue
		}
		return backup.Parse([]byte(res.Stdout), topo.Stanza())
	}
	return backup.Repo{}, fmt.Errorf("reading the backup repository: %w", lastErr)
}
