package cli

import (
	"fmt"
	"strings"

	"github.com/pgha/pgha/pkg/failover"
)

// routerBeside names the direct DSN's gap when the router's is shown too.
func routerBeside(r failover.Report) string {
	if r.Router == nil {
		return ""
	}
	return " (direct multi-host DSN)"
}

// routerRows are the router's figures, beside the direct DSN's.
func routerRows(r failover.Report) [][]string {
	rr := r.Router
	if rr == nil {
		return nil
	}
	rows := [][]string{
		{"write unavailability through the router", fmt.Sprintf("%.2f s (%+.2f s beside the direct DSN)", rr.UnavailableSec, rr.DiffSec)},
		{"router writes acked / lost", fmt.Sprintf("%d / %d", rr.Audit.Acked, rr.LostAcked)},
	}
	ro := fmt.Sprintf("%d answers, %d from a primary", rr.ReadOnlyAnswers, rr.ReadOnlyFromPrimary)
	if len(rr.ReadOnlyPrimaries) > 0 {
		ro += " (" + strings.Join(rr.ReadOnlyPrimaries, ", ") + ")"
	}
	rows = append(rows, []string{"router replica port", ro})
	if c := rr.HeldSessionClosedSec; c != nil {
		v := fmt.Sprintf("closed %.2f s after the fault", *c)
		if *c < 0 {
			v = "still open: hanging"
		}
		rows = append(rows, []string{"session held on " + rr.HeldSessionNode + " via the router", v})
	}
	return rows
}
