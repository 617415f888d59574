package cli

import (
	"fmt"
	"strings"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/spf13/cobra"
)

func (a *app) newInspectCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Look inside a running cluster: Patroni's keys in etcd, the member list",
	}
	cmd.AddCommand(a.newInspectEtcdCommand(), a.newInspectClusterCommand())
	return cmd
}

func (a *app) newInspectEtcdCommand() *cobra.Command {
	var name, prefix, output string
	var values bool
	etcd := &cobra.Command{Use: "etcd", Short: "Inspect the cluster's etcd"}
	keys := &cobra.Command{
		Use:   "keys",
		Short: "The Patroni keys under /service/<scope>/, values decoded",
		Long: `List the keys Patroni keeps under /<namespace>/<scope>/ (initialize, config, leader,
members/..., status, history, sync, failover, failsafe when present) with their values
decoded, and the remaining TTL of leased keys (the leader's lease shows how long a dead
primary would keep the leadership). --values prints each value in full, JSON indented.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, acc, err := a.access(ctx, name)
			if err != nil {
				return err
			}
			if prefix == "" {
				prefix = acc.Topo.KeyPrefix()
			}
			ks, err := acc.EtcdKeys(ctx, prefix)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(a.stdout, ks)
			}
			if values {
				for _, k := range ks {
					fmt.Fprintf(a.stdout, "%s%s\n%s\n\n", k.Key, ttlNote(k), indent(k.Pretty()))
				}
				return nil
			}
			var rows [][]string
			for _, k := range ks {
				ttl := ""
				if k.Lease != 0 {
					ttl = fmt.Sprintf("%ds", k.TTLSeconds)
				}
				rows = append(rows, []string{k.Key, truncate(strings.Join(strings.Fields(k.Value), " "), 70), ttl})
			}
			// A value is a one-line preview: --values prints it whole.
			a.printSpec(tableSpec{Headers: []string{"KEY", "VALUE", "LEASE TTL"}, Rows: rows, Clip: []string{"VALUE"}})
			if len(ks) == 0 {
				fmt.Fprintf(a.stderr, "no keys under %s\n", prefix)
			}
			return nil
		},
	}
	addNameFlag(keys, &name)
	keys.Flags().StringVar(&prefix, "prefix", "", "key prefix (default /<namespace>/<scope>/)")
	keys.Flags().BoolVar(&values, "values", false, "print every value in full")
	addOutputFlag(keys, &output)
	etcd.AddCommand(keys)
	return etcd
}

func ttlNote(k clients.EtcdKey) string {
	if k.Lease == 0 {
		return ""
	}
	return fmt.Sprintf("  (lease %x, %d s left)", k.Lease, k.TTLSeconds)
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

func (a *app) newInspectClusterCommand() *cobra.Command {
	var name, output string
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "The patronictl list view: member, host, role, state, timeline, lag; leader first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, acc, err := a.access(ctx, name)
			if err != nil {
				return err
			}
			view, err := acc.Cluster(ctx)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(a.stdout, view)
			}
			var rows [][]string
			for _, m := range view.Members {
				lag := ""
				switch v := m.Lag.(type) {
				case float64:
					lag = fmt.Sprintf("%.1f", m.LagMB)
				case string:
					lag = v
				}
				rows = append(rows, []string{m.Name, fmt.Sprintf("%s:%d", m.Host, m.Port), m.Role, m.State, fmt.Sprint(m.Timeline), lag})
			}
			a.printTable([]string{"MEMBER", "HOST", "ROLE", "STATE", "TL", "LAG IN MB"}, rows, "STATE", "HOST")
			return nil
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	return cmd
}
