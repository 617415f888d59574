package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// pause and resume: Patroni's maintenance mode, as `patronictl pause`.
func (a *app) newPauseCommand() *cobra.Command  { return a.pauseCommand(true) }
func (a *app) newResumeCommand() *cobra.Command { return a.pauseCommand(false) }

func (a *app) pauseCommand(pause bool) *cobra.Command {
	var name, output string
	var timeout time.Duration
	use, short, long := "pause", "Put the cluster in maintenance mode: Patroni stops failing over and restarting PostgreSQL",
		`Turn Patroni's maintenance mode on (PATCH /config {"pause": true}) and wait until every
member reports it. While paused, Patroni neither promotes a replica when the primary dies
nor restarts a stopped PostgreSQL: use it before working on a node by hand.
`+"`pgha resume`"+` turns automatic failover back on.`
	if !pause {
		use, short, long = "resume", "Leave maintenance mode: Patroni fails over and manages PostgreSQL again",
			`Turn Patroni's maintenance mode off and wait until every member reports it.`
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st := a.newStatus()
			defer st.Close()
			o, err := a.ops(ctx, name, st)
			if err != nil {
				return err
			}
			title, done := "Pausing cluster "+name, "Cluster "+name+" is paused: no automatic failover until `pgha resume`"
			if !pause {
				title, done = "Resuming cluster "+name, "Cluster "+name+" resumed: automatic failover is on"
			}
			st.Start(title)
			start := time.Now()
			if err := o.SetPause(ctx, pause, timeout); err != nil {
				st.End(false, "")
				return err
			}
			st.End(true, fmt.Sprintf("%s (%s)", done, time.Since(start).Round(10*time.Millisecond)))
			if output == "json" {
				return printJSON(a.stdout, map[string]any{"cluster": name, "paused": pause})
			}
			return nil
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for every member to report the change")
	return cmd
}
