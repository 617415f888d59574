package cli

import (
	"fmt"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/spf13/cobra"
)

func (a *app) newHistoryCommand() *cobra.Command {
	var name, output string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show the cluster's timelines: each failover and switchover, when and to whom",
		Long: `Show Patroni's timeline history (GET /history), as patronictl history does: one line per
timeline switch, with the WAL position where the old timeline ended, the reason PostgreSQL
wrote, when it happened and which node became the primary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, acc, err := a.access(ctx, name)
			if err != nil {
				return err
			}
			hist, err := acc.History(ctx)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(a.stdout, hist)
			}
			if len(hist) == 0 {
				_, tl := acc.Primary(ctx)
				fmt.Fprintf(a.stderr, "No failover or switchover yet: the cluster is on timeline %d since it was bootstrapped.\n", max(tl, 1))
				return nil
			}
			var rows [][]string
			for _, h := range hist {
				rows = append(rows, []string{fmt.Sprint(h.Timeline), clients.LSNString(h.LSN), h.Reason, h.Timestamp, h.NewLeader})
			}
			a.printTable([]string{"TL", "LSN", "REASON", "TIMESTAMP", "NEW LEADER"}, rows, "REASON")
			return nil
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	return cmd
}
