package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) newStatusCommand() *cobra.Command {
	var name, output string
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster at a glance: containers, images, roles, ports, health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if watch {
				return a.watchStatus(cmd.Context(), name, output, interval)
			}
			return a.showStatus(cmd, name, output)
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "a live view of roles, state, timeline and lag until Ctrl-C (off a terminal: a snapshot per interval)")
	cmd.Flags().DurationVar(&interval, "interval", 500*time.Millisecond, "how often --watch refreshes")
	return cmd
}

// showStatus prints the cluster summary. Missing, stopped or unhealthy
// containers are listed on stderr after the table.
func (a *app) showStatus(cmd *cobra.Command, name, output string) error {
	ctx := cmd.Context()
	b, err := a.backendFor(ctx, name, nil)
	if err != nil {
		return err
	}
	st, err := b.Status(ctx, name)
	if err != nil {
		return err
	}
	if output == "json" {
		return printJSON(a.stdout, st)
	}
	onSwarm := false
	for _, n := range st.Nodes {
		onSwarm = onSwarm || n.Host != ""
	}
	var rows [][]string
	for _, n := range st.Nodes {
		state, health := n.State, n.Health
		if health != "" && health != "-" && health != n.State {
			state += ", " + health
		}
		row := []string{n.Service, n.Container, n.Image, n.Role, strings.Join(n.Ports, " "), state}
		if onSwarm {
			host := n.Host
			if host == "" {
				host = "-"
			}
			row = append(row[:2], append([]string{host}, row[2:]...)...)
		}
		rows = append(rows, row)
	}
	headers := []string{"SERVICE", "CONTAINER", "IMAGE", "ROLE", "PORTS", "STATUS"}
	if onSwarm {
		// Which node runs each member: a swarm's services move only when pgha moves them.
		headers = []string{"SERVICE", "CONTAINER", "HOST", "IMAGE", "ROLE", "PORTS", "STATUS"}
	}
	a.printTable(headers, rows, "STATUS", "PORTS", "IMAGE", "CONTAINER")
	for _, p := range st.Problems {
		fmt.Fprintf(a.stderr, "! %s\n", p)
	}
	return nil
}
