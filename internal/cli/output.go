package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
)

// printTable writes rows as a bordered table that fits the terminal when
// stdout is one, and as tab-separated lines elsewhere, so that scripts can cut
// and awk it. wrap names the columns that carry free text: on a terminal they
// give up width first and wrap inside their cells (see renderTable).
func (a *app) printTable(headers []string, rows [][]string, wrap ...string) {
	a.printSpec(tableSpec{Headers: headers, Rows: rows, Wrap: wrap})
}

// printSpec is printTable with every hint of tableSpec.
func (a *app) printSpec(spec tableSpec) {
	if !a.stdoutTTY {
		fmt.Fprintln(a.stdout, strings.Join(spec.Headers, "\t"))
		for _, r := range spec.Rows {
			fmt.Fprintln(a.stdout, strings.Join(r, "\t"))
		}
		return
	}
	// One write, ending with its newline, so that nothing written to the same
	// terminal on stderr afterwards can land on the table's last line.
	spec.Bold = a.color
	io.WriteString(a.stdout, renderTable(spec, a.termWidth()))
}

// termWidth measures the terminal stdout writes to, each time: a live view
// re-renders at the new width after a resize.
func (a *app) termWidth() int {
	if f, ok := a.stdout.(*os.File); ok {
		return terminalWidth(int(f.Fd()))
	}
	return terminalWidth(-1)
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
