package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) newReportCommand() *cobra.Command {
	var name, file, output string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write a diagnostics bundle (tar.gz) with every secret redacted, to attach to a bug report",
		Long: `Write one tar.gz with what it takes to diagnose the cluster, as kubectl cnpg report and
kind export logs do: every container's logs and inspect output, Patroni's member list,
history, dynamic configuration and each node's state, the etcd keys, PostgreSQL's settings
(pg_settings) and replication views (pg_stat_replication, pg_replication_slots,
pg_stat_wal_receiver) per node, the topology, the status and pgha's version.
Every generated password and key is replaced by [REDACTED], as are the values of
environment variables named *PASSWORD*, *SECRET* or *KEY*. A part that cannot be read
(a stopped node) is written as a .error file saying why.`,
		Example: "  pgha report\n  pgha report -f /tmp/lab.tar.gz",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st := a.newStatus()
			defer st.Close()
			b, err := a.backendFor(ctx, name, nil)
			if err != nil {
				return err
			}
			o, err := a.ops(ctx, name, nil)
			if err != nil {
				return err
			}
			stamp := time.Now().UTC().Format("20060102-150405")
			dir := fmt.Sprintf("pgha-report-%s-%s", name, stamp)
			if file == "" {
				file = dir + ".tar.gz"
			}
			if !strings.HasSuffix(file, ".tar.gz") && !strings.HasSuffix(file, ".tgz") {
				return usageError{fmt.Errorf("--file %q: the report is a gzipped tar, name it .tar.gz or .tgz", file)}
			}
			st.Start("Collecting the diagnostics of cluster " + name)
			status, err := b.Status(ctx, name)
			if err != nil {
				st.End(false, "")
				return err
			}
			members := []string{}
			for _, n := range status.Nodes {
				if n.State != "missing" {
					members = append(members, n.Node)
				}
			}
			// Written next to its final name and renamed, so that a failed
			// report never leaves a half archive under the asked name.
			tmp, err := os.CreateTemp(filepath.Dir(file), ".pgha-report-*")
			if err != nil {
				st.End(false, "")
				return fmt.Errorf("creating %s: %w", file, err)
			}
			defer os.Remove(tmp.Name())
			info, err := o.Report(ctx, tmp, dir, version, members, status)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				st.End(false, "")
				return err
			}
			if err := os.Chmod(tmp.Name(), 0o644); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), file); err != nil {
				st.End(false, "")
				return fmt.Errorf("writing %s: %w", file, err)
			}
			fi, _ := os.Stat(file)
			info.File, info.Bytes = file, fi.Size()
			st.End(true, fmt.Sprintf("Wrote %s: %d files, %d KiB, secrets redacted", file, len(info.Entries), info.Bytes>>10))
			for _, e := range info.Errors {
				st.Warn("not collected: " + e)
			}
			if output == "json" {
				return printJSON(a.stdout, info)
			}
			fmt.Fprintln(a.stdout, file)
			return nil
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVarP(&file, "file", "f", "", "where to write the archive (default: ./pgha-report-NAME-TIME.tar.gz)")
	return cmd
}
