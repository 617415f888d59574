package guard

import (
	"strings"
	"testing"
	"time"

	"github.com/pgha/pgha/pkg/topology"
)

func TestDecide(t *testing.T) {
	topo, _ := topology.Generate("lab", 3, 3)
	labels := func(cluster, role, node string) map[string]string {
		return map[string]string{topology.LabelCluster: cluster, topology.LabelRole: role, topology.LabelNode: node}
	}
	dead := Container{Found: true, Name: "lab-patroni2", Labels: labels("lab", topology.RolePatroni, "patroni2"), Status: "exited", ExitCode: 137}
	holds := LeaderKey{Exists: true, Value: "patroni2", ModRevision: 42}
	with := func(change func(*Container)) Container {
		c := dead
		c.Labels = labels("lab", topology.RolePatroni, "patroni2")
		change(&c)
		return c
	}
	cases := []struct {
		name      string
		event     string
		container Container
		leader    LeaderKey
		delete    bool
		reason    string
	}{
		{"killed primary", EventDie, dead, holds, true, "patroni2 is exited (exit code 137) according to the engine and the leader key still names it"},
		{"exit code unknown", EventReconcile, with(func(c *Container) { c.ExitCode = -1 }), holds, true, "patroni2 is exited according to the engine and"},
		{"dead state", EventDie, with(func(c *Container) { c.Status = "dead" }), holds, true, "revision 42"},
		{"dead primary found on reconcile", EventReconcile, dead, holds, true, "still names it"},
		{"a replica died", EventDie, with(func(c *Container) {
			c.Name, c.Labels[topology.LabelNode] = "lab-patroni1", "patroni1"
		}), holds, false, "the leader key names patroni2, a live member's key is never touched"},
		{"no leader key", EventDie, dead, LeaderKey{}, false, "no leader key"},
		{"paused, seen by its event", EventPause, with(func(c *Container) { c.Status, c.Running, c.Paused = "paused", true, true }), holds, false, "paused: frozen, not dead"},
		{"paused at inspection", EventDie, with(func(c *Container) { c.Status, c.Running, c.Paused = "paused", true, true }), holds, false, "paused"},
		{"running again", EventDie, with(func(c *Container) { c.Status, c.Running = "running", true }), holds, false, "running (again)"},
		{"restarting", EventDie, with(func(c *Container) { c.Status, c.Running, c.Restarting = "restarting", true, true }), holds, false, "restarting"},
		{"being removed", EventDie, with(func(c *Container) { c.Status = "removing" }), holds, false, "not a confirmed exit"},
		{"gone", EventDie, Container{}, holds, false, "container is gone"},
		{"another cluster", EventDie, with(func(c *Container) { c.Labels[topology.LabelCluster] = "other" }), holds, false, `belongs to cluster "other"`},
		{"not a Patroni container", EventDie, with(func(c *Container) { c.Labels[topology.LabelRole] = topology.RoleEtcd }), holds, false, `role "etcd"`},
		{"no pgha labels", EventDie, with(func(c *Container) { c.Labels = map[string]string{} }), holds, false, `belongs to cluster ""`},
		{"unknown node", EventDie, with(func(c *Container) { c.Labels[topology.LabelNode] = "patroni9" }), holds, false, "not a Patroni node pgha created"},
		{"name not pgha's", EventDie, with(func(c *Container) { c.Name = "impostor" }), holds, false, "not a Patroni node pgha created"},
		{"swarm task of the primary's service", EventDie, with(func(c *Container) {
			c.Name, c.Labels[swarmServiceLabel] = "lab-patroni2.1.x2k9d0", "lab-patroni2"
		}), holds, true, "still names it"},
		{"swarm task of another service", EventDie, with(func(c *Container) {
			c.Name, c.Labels[swarmServiceLabel] = "lab-patroni2.1.x2k9d0", "impostor"
		}), holds, false, "not a Patroni node pgha created"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Decide(Facts{Config: ConfigFor(topo), Event: tc.event, Container: tc.container, Leader: tc.leader})
			if v.Delete != tc.delete || !strings.Contains(v.Reason, tc.reason) {
				t.Errorf("Decide = delete %v, %q; want delete %v and a reason with %q", v.Delete, v.Reason, tc.delete, tc.reason)
			}
		})
	}
}

func TestParseLogAndLastDecision(t *testing.T) {
	log := `{"time":"2026-01-02T03:04:05Z","event":"start","reason":"guarding"}
{"time":"2026-01-02T03:04:06Z","event":"reconcile","member":"patroni2","action":"none","outcome":"left alone","reason":"running"}
not json: a stray line
{"time":"2026-01-02T03:04:07Z","event":"die","member":"patroni2","action":"delete","outcome":"deleted","reason":"dead","decisionMs":3.5}
{"time":"2026-01-02T03:04:08Z","event":"disconnected","reason":"EOF"}
`
	recs := ParseLog(strings.NewReader(log))
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4: %+v", len(recs), recs)
	}
	last := LastDecision(recs)
	if last == nil || last.Member != "patroni2" || last.Outcome != OutcomeDeleted || last.DecisionMs != 3.5 {
		t.Fatalf("last decision = %+v", last)
	}
	if s := last.Summary(); !strings.HasPrefix(s, "deleted the leader key of patroni2 at ") {
		t.Errorf("summary %q", s)
	}
	if d := DecisionOn(recs, "patroni2", time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)); d == nil || d.Event != EventDie {
		t.Errorf("decision on patroni2's event = %+v", d)
	}
	if d := DecisionOn(recs, "patroni2", time.Date(2026, 1, 2, 3, 4, 7, 500, time.UTC)); d != nil {
		t.Errorf("a decision before since: %+v", d)
	}
	if d := DecisionOn(recs, "patroni1", time.Time{}); d != nil {
		t.Errorf("a decision on another member: %+v", d)
	}
	if LastDecision(recs[:1]) != nil {
		t.Error("a start note counted as a decision")
	}
	if got := timestamp(time.Unix(12, 5)); got != "12.000000005" {
		t.Errorf("timestamp = %s", got)
	}
}
