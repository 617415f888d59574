package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) newScaleCommand() *cobra.Command {
	var name, output string
	var patroni int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "scale --patroni N",
		Short: "Add or remove Patroni nodes on a running cluster",
		Long: `Bring a running cluster to N Patroni nodes.

Growing creates the new nodes (patroni4, patroni5, ... on the next free ports) and waits until
each streams from the primary. Shrinking removes replicas only, the newest first, never the
current primary: their containers and data volumes go, then pgha waits until their member keys
in etcd and their replication slots on the primary are gone (it removes any that linger).
The new size is remembered: status, verify, up and down see the scaled cluster.`,
		Example: "  pgha scale --patroni 5\n  pgha scale --patroni 3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("patroni") {
				return usageError{errors.New("give the number of Patroni nodes: --patroni N")}
			}
			ctx := cmd.Context()
			st := a.newStatus()
			defer st.Close()
			b, err := a.backendFor(ctx, name, st)
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := b.Scale(ctx, name, patroni, timeout)
			if err != nil {
				return err
			}
			switch {
			case len(res.Added) > 0:
				st.Info(fmt.Sprintf("Cluster %s scaled from %d to %d Patroni nodes: added %s (%s)", name, res.From, res.To, strings.Join(res.Added, ", "), time.Since(start).Round(100*time.Millisecond)))
			case len(res.Removed) > 0:
				st.Info(fmt.Sprintf("Cluster %s scaled from %d to %d Patroni nodes: removed %s (%s)", name, res.From, res.To, strings.Join(res.Removed, ", "), time.Since(start).Round(100*time.Millisecond)))
			default:
				st.Info(fmt.Sprintf("Cluster %s has %d Patroni nodes already; nothing changed", name, res.To))
			}
			if output == "json" {
				return printJSON(a.stdout, res)
			}
			return a.showStatus(cmd, name, output)
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	cmd.Flags().IntVar(&patroni, "patroni", 0, "the number of Patroni nodes to have")
	cmd.Flags().DurationVar(&timeout, "timeout", day2Timeout, "how long to wait for new nodes to stream, or removed ones to be forgotten")
	return cmd
}
