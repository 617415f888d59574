package cli

import (
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/ops"
	"github.com/spf13/cobra"
)

func (a *app) newReinitCommand() *cobra.Command {
	var name, output string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reinit NODE",
		Short: "Rebuild a replica from the primary (Patroni's reinitialize) and wait until it streams",
		Long: `Throw a replica's data away and clone it from the primary again, through Patroni's
REST API (POST /reinitialize), as patronictl reinit does; then wait until it streams.
The primary cannot be reinitialised: switch over first.`,
		Example: "  pgha reinit patroni3",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st := a.newStatus()
			defer st.Close()
			o, err := a.ops(ctx, name, st)
			if err != nil {
				return err
			}
			node, err := ops.Node(o.Topo, args[0])
			if err != nil {
				return err
			}
			st.Start("Reinitialising " + node + " from the primary")
			start := time.Now()
			if err := o.Reinit(ctx, node, timeout); err != nil {
				st.End(false, "")
				return err
			}
			took := time.Since(start)
			st.End(true, fmt.Sprintf("%s rebuilt and streaming (%s)", node, took.Round(100*time.Millisecond)))
			if output == "json" {
				return printJSON(a.stdout, map[string]any{"cluster": name, "node": node, "streaming": true, "seconds": took.Seconds()})
			}
			return nil
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	cmd.Flags().DurationVar(&timeout, "timeout", day2Timeout, "how long to wait for the replica to stream again")
	return cmd
}
