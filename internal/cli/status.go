package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/provision"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
)

func (a *app) newStatusCommand() *cobra.Command {
	var name, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster at a glance: containers, images, roles, ports, health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.showStatus(cmd, name, output)
		},
	}
	cmd.Flags().StringVar(&name, "name", topology.DefaultName, "cluster name")
	addOutputFlag(cmd, &output)
	return cmd
}

// showStatus prints the cluster summary. Missing, stopped or unhealthy
// containers are listed on stderr after the table.
func (a *app) showStatus(cmd *cobra.Command, name, output string) error {
	ctx := cmd.Context()
	docker, err := a.engine(ctx)
	if err != nil {
		return err
	}
	st, err := provision.Status(ctx, docker, name)
	if err != nil {
		return err
	}
	if output == "json" {
		return printJSON(a.stdout, st)
	}
	var rows [][]string
	for _, n := range st.Nodes {
		state, health := n.State, n.Health
		if n.Service == topology.RoleGuard && st.Guard != nil {
			health = guardHealth(st.Guard.State, st.Guard.Watching, st.Guard.LastDecision)
		}
		if health != "" && health != "-" && health != n.State {
			state += ", " + health
		}
		rows = append(rows, []string{n.Service, n.Container, n.Image, n.Role, strings.Join(n.Ports, " "), state})
	}
	a.printTable([]string{"SERVICE", "CONTAINER", "IMAGE", "ROLE", "PORTS", "STATUS"}, rows, "STATUS", "PORTS", "IMAGE", "CONTAINER")
	for _, p := range st.Problems {
		fmt.Fprintf(a.stderr, "! %s\n", p)
	}
	return nil
}

// guardHealth is the guard's status in a few words: whether it watches the
// engine's events and, when its latest decision deleted a leader key or
// failed, when. The whole decision is in `pgha status -o json`
// (guard.lastDecision) and in the guard's log.
func guardHealth(state string, watching bool, last *guard.Record) string {
	if state != "running" {
		return "-"
	}
	h := "not watching"
	if watching {
		h = "watching"
	}
	if last == nil {
		return h
	}
	at := last.Time.Local().Format(time.TimeOnly)
	switch last.Outcome {
	case guard.OutcomeDeleted:
		return h + "; deleted key " + at
	case guard.OutcomeFailed:
		return h + "; failed " + at
	}
	return h
}
