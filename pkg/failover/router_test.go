package failover

import (
	"strings"
	"testing"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/faults"
	"github.com/pgha/pgha/pkg/topology"
)

// The matrix sums up the router's write gap beside the direct DSN's, and
// leaves it out for a cluster without a router.
func TestSummarizeRouter(t *testing.T) {
	runs := []Report{
		{Fault: "kill", UnavailableSec: 1, Router: &RouterReport{UnavailableSec: 1.1}},
		{Fault: "kill", UnavailableSec: 3, Router: &RouterReport{UnavailableSec: 2.9}},
		{Fault: "kill", UnavailableSec: 2, Router: &RouterReport{UnavailableSec: 2.2}},
		{Fault: "stop", UnavailableSec: 2},
	}
	s := Summarize([]faults.Fault{faults.Kill{}, faults.Stop{}}, runs, topology.SyncOff)
	if s[0].RouterGapMedian != 2.2 || s[0].RouterGapMax != 2.9 || s[0].GapMedian != 2 {
		t.Errorf("kill summary %+v", s[0])
	}
	if s[1].RouterGapMedian != 0 || s[1].RouterGapMax != 0 {
		t.Errorf("a run without a router: %+v", s[1])
	}
}

// The router writer writes through the router's primary port; the gap it
// reports is measured like the direct writer's.
func TestRouterWriterAndGap(t *testing.T) {
	topo := topology.Seed()
	w := NewRouterWriter(clients.Access{Topo: topo, Host: "127.0.0.1", Creds: clients.Credentials{SuperuserPassword: "pw"}}, "t")
	if !strings.Contains(w.dsn, "@127.0.0.1:5000/postgres?") || strings.Contains(w.dsn, "target_session_attrs") {
		t.Errorf("router writer DSN %s", w.dsn)
	}
	t0 := time.Now()
	w.writes = []Write{
		{ID: 1, Sent: t0.Add(-20 * time.Millisecond), Done: t0.Add(-10 * time.Millisecond), Outcome: Acked},
		{ID: 2, Sent: t0, Done: t0.Add(2 * time.Second), Outcome: Unknown},
		{ID: 3, Sent: t0.Add(2 * time.Second), Done: t0.Add(2500 * time.Millisecond), Outcome: Acked},
	}
	gap, _, _, ok := Gap(w.Writes(), t0)
	if !ok || gap != 2510*time.Millisecond {
		t.Errorf("gap %s ok %v", gap, ok)
	}
}
