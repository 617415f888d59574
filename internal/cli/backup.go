package cli

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/backup"
	"github.com/pgha/pgha/pkg/provision"
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
			docker, topo, err := a.cluster(ctx, name)
			if err != nil {
				return err
			}
			st := a.newStatus()
			defer st.Close()
			b, err := (&provision.Provisioner{Docker: docker, Progress: st}).Backup(ctx, topo, provision.BackupOptions{Type: typ})
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
	cmd.Flags().StringVar(&name, "name", topology.DefaultName, "cluster name")
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
			docker, topo, err := a.cluster(ctx, name)
			if err != nil {
				return err
			}
			repo, err := (&provision.Provisioner{Docker: docker, Progress: a.newStatus()}).Repo(ctx, topo)
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
	cmd.Flags().StringVar(&name, "name", topology.DefaultName, "cluster name")
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
	var latest, yes bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore the whole cluster to a point in time from its backups and WAL archive",
		Long: `Restore every node of the cluster: pgha checks the target against the backups in the
repository (and refuses one outside the recoverable span, naming it), asks for
confirmation, then removes the Patroni nodes and their data, clears the cluster's keys in
etcd, lets Patroni bootstrap the bootstrap leader with pgBackRest restoring to the target,
clones the replicas from it and waits until the cluster verifies healthy.
Exactly one of --to-time, --to-lsn and --latest.`,
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
			if n != 1 {
				return usageError{fmt.Errorf("give exactly one of --to-time, --to-lsn and --latest")}
			}
			if !yes && !a.stdinTTY() {
				return usageError{fmt.Errorf("a restore replaces every node's data: confirm with --yes when not at a terminal")}
			}
			ctx := cmd.Context()
			docker, topo, err := a.cluster(ctx, name)
			if err != nil {
				return err
			}
			st := a.newStatus()
			defer st.Close()
			confirm := func(plan provision.RestorePlan) bool {
				if yes {
					return true
				}
				fmt.Fprintf(a.stderr, "Restore cluster %s to %s from backup %s?\nThis replaces the data of %s. [y/N] ",
					topo.Name, plan.Target, plan.Backup.Label, strings.Join(plan.Replaced, ", "))
				answer, _ := bufio.NewReader(a.stdin).ReadString('\n')
				answer = strings.ToLower(strings.TrimSpace(answer))
				return answer == "y" || answer == "yes"
			}
			start := time.Now()
			p := &provision.Provisioner{Docker: docker, Progress: st}
			if _, err := p.Restore(ctx, topo, target, timeout, confirm); err != nil {
				return err
			}
			// Up has waited for every replica to stream; a minute covers a
			// synchronous standby being named.
			rep, err := a.verifyUntil(ctx, topo.Name, time.Minute)
			if err != nil {
				return err
			}
			if !rep.OK {
				a.printChecks(rep)
				return fmt.Errorf("the restored cluster %s does not verify healthy", topo.Name)
			}
			st.Info(fmt.Sprintf("Cluster %s restored to %s and verified healthy in %s", topo.Name, target, time.Since(start).Round(100*time.Millisecond)))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", topology.DefaultName, "cluster name")
	cmd.Flags().StringVar(&toTime, "to-time", "", `restore to this time (RFC 3339, or "2006-01-02 15:04:05" local time)`)
	cmd.Flags().StringVar(&toLSN, "to-lsn", "", "restore to this WAL position (like 0/5002118)")
	cmd.Flags().BoolVar(&latest, "latest", false, "restore to the end of the archived WAL")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "limit for the restore and the wait for a healthy cluster")
	return cmd
}
