package cli

import (
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/ops"
	"github.com/spf13/cobra"
)

func (a *app) newRestartCommand() *cobra.Command {
	var name, output string
	var rolling bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restart [NODE]",
		Short: "Restart PostgreSQL through Patroni: one node, or every node (--rolling: with one switchover)",
		Long: `Restart PostgreSQL through Patroni's REST API (POST /restart), as patronictl restart does,
and wait until each node runs again (a replica streaming).

With NODE, only that node restarts; restarting the primary in place stops writes until it is back.
Without NODE every node restarts, the replicas first. With --rolling the primary does not restart
in place: the replicas restart one at a time, then a switchover hands the primary role to one of
them, then the old primary restarts as a replica: writes pause for one switchover only.`,
		Example: "  pgha restart --rolling\n  pgha restart patroni1",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st := a.newStatus()
			defer st.Close()
			o, err := a.ops(ctx, name, st)
			if err != nil {
				return err
			}
			start := time.Now()
			var restarted []string
			step := func(title string, fn func() error) error {
				st.Start(title)
				t := time.Now()
				if err := fn(); err != nil {
					st.End(false, "")
					return err
				}
				st.End(true, fmt.Sprintf("%s (%s)", title, time.Since(t).Round(100*time.Millisecond)))
				return nil
			}
			switch {
			case len(args) == 1:
				if rolling {
					return usageError{fmt.Errorf("--rolling restarts every node: give no NODE")}
				}
				node, err := ops.Node(o.Topo, args[0])
				if err != nil {
					return err
				}
				if s, err := o.Access.Patroni(ctx, node); err == nil && s.Role == clients.RolePrimary {
					st.Warn(node + " is the primary: writes stop until it is back (`pgha restart --rolling` switches over first)")
				}
				if err := step("Restarting "+node, func() error { return o.RestartNode(ctx, node, timeout) }); err != nil {
					return err
				}
				restarted = []string{node}
			case rolling:
				// Each move of the rolling restart is a step line of its own.
				var open bool
				var t time.Time
				var title string
				err := o.RollingRestart(ctx, timeout, func(s string) {
					if open {
						st.End(true, fmt.Sprintf("%s (%s)", title, time.Since(t).Round(100*time.Millisecond)))
					}
					title, t, open = s, time.Now(), true
					st.Start(s)
				})
				if open {
					st.End(err == nil, fmt.Sprintf("%s (%s)", title, time.Since(t).Round(100*time.Millisecond)))
				}
				if err != nil {
					return err
				}
				restarted = o.Topo.PatroniNames()
			default:
				primary, replicas, err := o.Roles(ctx)
				if err != nil {
					return err
				}
				for _, n := range append(replicas, primary) {
					if err := step("Restarting "+n, func() error { return o.RestartNode(ctx, n, timeout) }); err != nil {
						return err
					}
					restarted = append(restarted, n)
				}
			}
			st.Info(fmt.Sprintf("Restarted %d node(s) of %s in %s", len(restarted), name, time.Since(start).Round(100*time.Millisecond)))
			if output == "json" {
				return printJSON(a.stdout, map[string]any{"cluster": name, "restarted": restarted, "rolling": rolling, "seconds": time.Since(start).Seconds()})
			}
			return nil
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVar(&rolling, "rolling", false, "replicas first, then a switchover, then the old primary: one switchover's write gap")
	cmd.Flags().DurationVar(&timeout, "timeout", day2Timeout, "how long to wait for each node to run again")
	return cmd
}
