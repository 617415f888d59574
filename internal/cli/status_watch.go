package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/topology"
)

// watchFrame is one refresh of `status --watch`: the engine's and the
// services' view (status) and Patroni's member list (timeline, lag).
type watchFrame struct {
	Time    time.Time             `json:"time"`
	Status  cluster.ClusterStatus `json:"status"`
	Members []clients.Member      `json:"members,omitempty"`
	Paused  bool                  `json:"paused,omitempty"`
	// PatroniErr says why Patroni's member list is missing.
	PatroniErr string `json:"patroniError,omitempty"`
}

// watchStatus refreshes the status every interval until Ctrl-C: on a
// terminal as a live view redrawn in place, elsewhere one snapshot per
// interval (a table, or a JSON object per line with -o json).
func (a *app) watchStatus(ctx context.Context, name, output string, interval time.Duration) error {
	b, err := a.backendFor(ctx, name, nil)
	if err != nil {
		return err
	}
	topo, err := b.Find(ctx, name)
	if err != nil {
		return err
	}
	acc, err := cluster.AccessFor(b, topo)
	if err != nil {
		return err
	}
	live := a.stdoutTTY && output != "json"
	if live {
		// Hide the cursor while redrawing; show it again however we leave.
		io.WriteString(a.stdout, "\x1b[?25l\x1b[H\x1b[2J")
		defer io.WriteString(a.stdout, "\x1b[?25h")
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		f, err := a.frame(ctx, b, acc, name)
		if ctx.Err() != nil {
			return nil // Ctrl-C ends the view
		}
		if err != nil {
			return err
		}
		switch {
		case output == "json":
			if err := printCompactJSON(a.stdout, f); err != nil {
				return err
			}
		case live:
			// Home, the frame with each line's rest cleared, then the rest
			// of the screen cleared: no flicker, no stale lines.
			text := a.renderFrame(f, true)
			text = strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\x1b[K\n")
			io.WriteString(a.stdout, "\x1b[H"+text+"\x1b[K\n\x1b[J")
		default:
			io.WriteString(a.stdout, a.renderFrame(f, false)+"\n")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *app) frame(ctx context.Context, b *cluster.Docker, acc clients.Access, name string) (watchFrame, error) {
	f := watchFrame{Time: time.Now()}
	st, err := b.Status(ctx, name)
	if err != nil {
		return f, err
	}
	f.Status = st
	// The topology may change under the view (scale): follow it.
	if topo, err := b.Find(ctx, name); err == nil {
		acc.Topo = topo
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	view, err := acc.Cluster(cctx)
	if err != nil {
		f.PatroniErr = err.Error()
	}
	f.Members, f.Paused = view.Members, view.Pause
	return f, nil
}

// renderFrame is one frame as text: a title line and the table, fitted to
// the terminal on a terminal, tab-separated elsewhere.
func (a *app) renderFrame(f watchFrame, tty bool) string {
	members := map[string]clients.Member{}
	leader, tl := "", 0
	for _, m := range f.Members {
		members[m.Name] = m
		if m.Role == "leader" || m.Role == "standby_leader" {
			leader, tl = m.Name, m.Timeline
		}
	}
	headers := []string{"MEMBER", "ROLE", "STATE", "TL", "LAG", "PORTS"}
	var rows [][]string
	for _, n := range f.Status.Nodes {
		role, state, tlCell, lag := n.Role, n.State, "", ""
		if n.Health != "" && n.Health != "-" && n.Health != n.State {
			state += ", " + n.Health
		}
		// A stopped node's member key outlives it until its lease ends:
		// what Patroni says of it then is stale.
		if n.Service == topology.RolePatroni && n.State == "running" {
			if m, ok := members[n.Node]; ok {
				role, tlCell = m.Role, fmt.Sprint(m.Timeline)
				switch v := m.Lag.(type) {
				case float64:
					lag = "0"
					if v > 0 {
						lag = humanBytes(int64(v))
					}
				case string:
					lag = v
				}
			}
		}
		// The host is the same for every port (the status title has it): the
		// view keeps the port numbers only, to leave the width to STATE.
		var ports []string
		for _, p := range n.Ports {
			if i := strings.LastIndex(p, ":"); i >= 0 && strings.Contains(p[i:], "->") {
				p = p[i+1:]
			}
			ports = append(ports, p)
		}
		rows = append(rows, []string{n.Node, role, state, tlCell, lag, strings.Join(ports, " ")})
	}
	title := fmt.Sprintf("cluster %s · %s", f.Status.Name, f.Time.Format("15:04:05.0"))
	switch {
	case leader != "":
		title += fmt.Sprintf(" · leader %s · timeline %d", leader, tl)
	case f.PatroniErr != "":
		title += " · Patroni: " + f.PatroniErr
	default:
		title += " · NO LEADER"
	}
	if f.Paused {
		title += " · PAUSED (maintenance mode)"
	}
	var sb strings.Builder
	if !tty {
		sb.WriteString("# " + title + "\n")
		sb.WriteString(strings.Join(headers, "\t") + "\n")
		for _, r := range rows {
			sb.WriteString(strings.Join(r, "\t") + "\n")
		}
		return sb.String()
	}
	style := lipgloss.NewStyle().Bold(true)
	if a.color {
		switch {
		case leader == "":
			style = style.Foreground(lipgloss.Color("1"))
		case f.Paused:
			style = style.Foreground(lipgloss.Color("3"))
		default:
			style = style.Foreground(lipgloss.Color("2"))
		}
	}
	width := a.termWidth()
	sb.WriteString(style.Render(truncate(title, width)) + "\n")
	sb.WriteString(renderTable(tableSpec{Headers: headers, Rows: rows, Wrap: []string{"STATE", "PORTS"}, Bold: a.color}, width))
	for _, p := range f.Status.Problems {
		sb.WriteString(truncate("! "+p, width) + "\n")
	}
	sb.WriteString(lipgloss.NewStyle().Faint(a.color).Render("Ctrl-C to leave") + "\n")
	return sb.String()
}

// printCompactJSON writes v as one line of JSON.
func printCompactJSON(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
