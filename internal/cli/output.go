package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
)

// printTable writes rows as a bordered table on a terminal and as
// tab-separated lines elsewhere, so that scripts can cut and awk it.
func (a *app) printTable(headers []string, rows [][]string) {
	if !a.stdoutTTY {
		fmt.Fprintln(a.stdout, strings.Join(headers, "\t"))
		for _, r := range rows {
			fmt.Fprintln(a.stdout, strings.Join(r, "\t"))
		}
		return
	}
	t := table.New().Headers(headers...).Rows(rows...).Border(lipgloss.NormalBorder())
	if a.color {
		t = t.StyleFunc(func(row, col int) lipgloss.Style {
			if row == table.HeaderRow {
				return lipgloss.NewStyle().Bold(true).Padding(0, 1)
			}
			return lipgloss.NewStyle().Padding(0, 1)
		})
	} else {
		t = t.StyleFunc(func(row, col int) lipgloss.Style { return lipgloss.NewStyle().Padding(0, 1) })
	}
	fmt.Fprintln(a.stdout, t.Render())
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// addOutputFlag adds -o/--output, which takes table (the default) or json;
// anything else is a usage error before the command runs.
func addOutputFlag(cmd *cobra.Command, o *string) {
	*o = "table"
	cmd.Flags().VarP((*outputFormat)(o), "output", "o", "output format: table or json")
}

type outputFormat string

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "format" }
func (o *outputFormat) Set(v string) error {
	if v != "table" && v != "json" {
		return fmt.Errorf("unknown output format %q: use table or json", v)
	}
	*o = outputFormat(v)
	return nil
}

// addNameFlag adds --name, the cluster's name, checked with the one cluster
// name rule when it is parsed: a bad name is a usage error before anything
// touches the engine or the state directory.
func addNameFlag(cmd *cobra.Command, name *string) {
	*name = topology.DefaultName
	cmd.Flags().Var((*clusterName)(name), "name", "cluster name")
}

type clusterName string

func (n *clusterName) String() string { return string(*n) }
func (n *clusterName) Type() string   { return "name" }
func (n *clusterName) Set(v string) error {
	if err := topology.ValidName(v); err != nil {
		return err
	}
	*n = clusterName(v)
	return nil
}
