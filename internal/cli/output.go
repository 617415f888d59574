package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
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

// outputFlag validates -o.
func checkOutput(o string) error {
	if o != "" && o != "table" && o != "json" {
		return fmt.Errorf("unknown output format %q: use table or json", o)
	}
	return nil
}
