package cli

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/progress"

	"github.com/pgha/pgha/pkg/backup"
	"github.com/pgha/pgha/pkg/ops"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
)

func (a *app) newBackupCommand() *cobra.Command {
	var name, typ, output string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back up the cluster with pgBackRest into its object store (full, diff or incr)",
		Long: `Take a pgBackRest backup of the current primary into the cluster's object store, with
progress, and print its label, type, size and duration. WAL is archived continuously
from the cluster's first minute, so any backup plus the archive restores to a point in time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := backup.ValidType(typ); err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			st := a.newStatus()
			defer st.Close()
			o, err := a.ops(ctx, name, st)
			if err != nil {
				return err
			}
			b, err := o.Backup(ctx, ops.BackupOptions{Type: typ})
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(a.stdout, b)
			}
			a.printBackups([]backup.Backup{b})
			return nil
		},
	}
	addNameFlag(cmd, &name)
	cmd.Flags().StringVar(&typ, "type", backup.Full, "backup type: "+strings.Join(backup.Types, ", "))
	addOutputFlag(cmd, &output)
	cmd.AddCommand(a.newBackupListCommand())
	return cmd
}

// backupList is `pgha backup list -o json`.
type backupList struct {
	Cluster string          `json:"cluster"`
	Stanza  string          `json:"stanza"`
	Backups []backup.Backup `json:"backups"`
	WALMin  string          `json:"walMin,omitempty"`
	WALMax  string          `json:"walMax,omitempty"`
	Window  *backup.Window  `json:"restorable,omitempty"`
}

func (a *app) newBackupListCommand() *cobra.Command {
	var name, output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "The backups in the repository and the span the cluster can be restored to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			o, err := a.ops(ctx, name, nil)
			if err != nil {
				return err
			}
			topo := o.Topo
			repo, err := o.Repo(ctx)
			if err != nil {
				return err
			}
			list := backupList{Cluster: topo.Name, Stanza: repo.Stanza, Backups: repo.Backups, WALMin: repo.WALMin, WALMax: repo.WALMax}
			if w, err := repo.Window(time.Time{}); err == nil {
				list.Window = &w
			}
			if output == "json" {
				return printJSON(a.stdout, list)
			}
			if len(repo.Backups) == 0 {
				fmt.Fprintf(a.stderr, "cluster %s has no backup yet (stanza %s: %s); take one with `pgha backup --name %s`\n", topo.Name, repo.Stanza, repo.Status, topo.Name)
				return nil
			}
			a.printBackups(repo.Backups)
			a.newStatus().Info(fmt.Sprintf("archived WAL %s … %s; restorable from %s", repo.WALMin, repo.WALMax, list.Window))
			return nil
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) printBackups(bs []backup.Backup) {
	headers := []string{"LABEL", "TYPE", "START", "STOP", "TOOK", "DB SIZE", "STORED", "WAL", "DEPENDS ON"}
	var rows [][]string
	for _, b := range bs {
		rows = append(rows, []string{b.Label, b.Type, b.Start.Local().Format(time.DateTime), b.Stop.Local().Format(time.DateTime),
			b.Duration().String(), humanBytes(b.Size), humanBytes(b.RepoSize), b.WALStart + " … " + b.WALStop, b.Prior})
	}
	if a.stdoutTTY {
		// On a terminal STOP is START plus TOOK: leave it to -o json and to
		// the tab-separated output, and the table fits 100 columns.
		headers = slices.Delete(headers, 3, 4)
		for i := range rows {
			rows[i] = slices.Delete(rows[i], 3, 4)
		}
	}
	a.printTable(headers, rows, "WAL", "LABEL", "START", "DEPENDS ON")
}

// humanBytes renders a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (a *app) newRestoreCommand() *cobra.Command {
	var name, toTime, toLSN string
	var latest, yes, abort bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore the whole cluster to a point in time from its backups and WAL archive",
		Long: `Restore every node of the cluster: pgha checks the target against the backups in the
repository (and refuses one outside the recoverable span, naming it) and asks for
confirmation, changing nothing until then. Then it stops writes on the primary (new sessions
read-only, open ones ended) and archives its last WAL, so that every acknowledged write can be
restored; replaces the Patroni containers and restores into new data volumes — the bootstrap
leader by pgBackRest to the target, the replicas cloned from it — and waits until the cluster
verifies healthy. Only then are the old volumes removed; a restore that fails goes back to them.
Exactly one of --to-time, --to-lsn and --latest. An interrupted restore is pending: run
"pgha restore" again (no target) to complete it, or "pgha restore --abort" to go back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var target topology.RestoreTarget
			n := 0
			if toTime != "" {
				t, err := backup.ParseTime(toTime)
				if err != nil {
					return usageError{err}
				}
				target.Time, n = t, n+1
			}
			if toLSN != "" {
				if _, err := backup.ParseLSN(toLSN); err != nil {
					return usageError{err}
				}
				target.LSN, n = toLSN, n+1
			}
			if latest {
				n++
			}
			pending, err := ops.PendingRestore(name)
			if err != nil {
				return err
			}
			switch {
			case abort && n > 0:
				return usageError{fmt.Errorf("--abort takes no target")}
			case abort && pending == nil:
				return fmt.Errorf("cluster %s has no pending restore to abort", name)
			case n > 1 || (n == 0 && pending == nil && !abort):
				return usageError{fmt.Errorf("give exactly one of --to-time, --to-lsn and --latest")}
			}
			if !yes && !a.stdinTTY() && pending == nil {
				return usageError{fmt.Errorf("a restore replaces every node's data: confirm with --yes when not at a terminal")}
			}
			ctx := cmd.Context()
			st := a.newStatus()
			defer st.Close()
			o, err := a.ops(ctx, name, st)
			if err != nil {
				return err
			}
			topo := o.Topo
			if abort {
				return o.Abort(ctx, timeout)
			}
			confirm := func(plan ops.RestorePlan) bool {
				if yes {
					return true
				}
				fmt.Fprintf(a.stderr, "Restore cluster %s to %s from backup %s?\nThis replaces the data of %s (kept until the restored cluster verifies healthy). [y/N] ",
					topo.Name, plan.Target, plan.Backup.Label, strings.Join(plan.Replaced, ", "))
				answer, _ := bufio.NewReader(a.stdin).ReadString('\n')
				answer = strings.ToLower(strings.TrimSpace(answer))
				return answer == "y" || answer == "yes"
			}
			start := time.Now()
			var want *topology.RestoreTarget
			if n == 1 {
				want = &target
			}
			plan, rep, err := o.Restore(ctx, want, timeout, confirm)
			if err != nil {
				if len(rep.Failed()) > 0 {
					a.printChecks(rep)
				}
				return err
			}
			st.Info(fmt.Sprintf("Cluster %s restored to %s and verified healthy in %s", topo.Name, plan.Target, time.Since(start).Round(100*time.Millisecond)))
			return nil
		},
	}
	addNameFlag(cmd, &name)
	cmd.Flags().StringVar(&toTime, "to-time", "", `restore to this time (RFC 3339, or "2006-01-02 15:04:05" local time)`)
	cmd.Flags().StringVar(&toLSN, "to-lsn", "", "restore to this WAL position (like 0/5002118)")
	cmd.Flags().BoolVar(&latest, "latest", false, "restore to the end of the archived WAL")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&abort, "abort", false, "give up a pending restore: go back to the data from before it")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "limit for the restore and the wait for a healthy cluster")
	return cmd
}

// ops prepares the day-2 operations of a cluster that must exist.
func (a *app) ops(ctx context.Context, name string, p progress.Progress) (*ops.Ops, error) {
	b, topo, err := a.cluster(ctx, name, p)
	if err != nil {
		return nil, err
	}
	return ops.New(b, topo, p)
}
