package failover

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgha/pgha/pkg/faults"
	"github.com/pgha/pgha/pkg/topology"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// probe is a probe of node at ms, writable or in state.
func probe(node string, ms int, st NodeState) Probe {
	p := Probe{Node: node, Sent: at(ms), Done: at(ms + 5), State: st}
	if st == Writable {
		p.ServerAt = at(ms + 2)
	}
	return p
}

func TestSplitBrains(t *testing.T) {
	// A clean failover: p1 writable, then down; p2 writable only later.
	clean := []Probe{probe("p1", 0, Writable), probe("p1", 100, Writable), probe("p1", 200, Down), probe("p1", 300, Down),
		probe("p2", 50, Replica), probe("p2", 150, Replica), probe("p2", 250, Stalled), probe("p2", 350, Writable), probe("p2", 450, Writable)}
	if got := SplitBrains(clean, at(0)); len(got) != 0 {
		t.Errorf("a clean failover reported %v", got)
	}
	// p1 keeps taking writes while p2 already does: the overlap is reported.
	brain := append(slices.Clone(clean[:2]), probe("p1", 200, Writable), probe("p1", 400, Writable), probe("p1", 500, Replica),
		probe("p2", 50, Replica), probe("p2", 350, Writable), probe("p2", 450, Writable))
	got := SplitBrains(brain, at(0))
	if len(got) != 1 || !got[0].From.Equal(at(352)) || !got[0].To.Equal(at(402)) || strings.Join(got[0].Nodes, ",") != "p1,p2" {
		t.Fatalf("split brains %+v", got)
	}
	if got[0].FromSec != 0.352 || !strings.Contains(got[0].String(), "p1 and p2 writable at once") {
		t.Errorf("%+v %s", got[0], got[0])
	}
	// A run broken by a failed probe is two runs: no overlap across the break.
	broken := []Probe{probe("p1", 0, Writable), probe("p1", 100, Down), probe("p1", 400, Writable),
		probe("p2", 200, Writable), probe("p2", 300, Replica)}
	if got := SplitBrains(broken, at(0)); len(got) != 0 {
		t.Errorf("runs across a failed probe: %v", got)
	}
}

func TestSegmentRange(t *testing.T) {
	got, err := segmentRange("0000000300000000000000FE", "000000030000000100000001", 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0000000300000000000000FE", "0000000300000000000000FF", "000000030000000100000000", "000000030000000100000001"}
	if !slices.Equal(got, want) {
		t.Errorf("range %v", got)
	}
	if _, err := segmentRange("000000030000000000000001", "000000040000000000000002", 16<<20); err == nil {
		t.Error("a range across timelines")
	}
	if one, _ := segmentRange("00000001000000000000000A", "00000001000000000000000A", 16<<20); len(one) != 1 {
		t.Errorf("one segment: %v", one)
	}
}

func TestLeaderRecorder(t *testing.T) {
	r := &leaderRecorder{holder: "?"}
	r.note("p1", 10, at(0))
	r.note("p1", 10, at(100)) // a renewal: no change
	r.note("", 0, at(200))    // expired
	r.note("p2", 20, at(300)) // a new key for p2
	r.note("p2", 20, at(400))
	r.note("p2", 30, at(500)) // p2 elected again: a new key
	ch := r.Changes()
	if len(ch) != 4 || ch[0].Created || !ch[2].Created || !ch[3].Created || ch[1].Holder != "" {
		t.Fatalf("changes %+v", ch)
	}
	if c, ok := r.newLeader(at(50), "p1", false); !ok || c.Holder != "p2" || !c.At.Equal(at(300)) {
		t.Errorf("new leader %+v %v", c, ok)
	}
	if c, ok := r.newLeader(at(350), "p2", true); !ok || !c.At.Equal(at(500)) {
		t.Errorf("the same leader elected again %+v %v", c, ok)
	}
	if _, ok := r.newLeader(at(350), "p2", false); ok {
		t.Error("the same leader counted as a new one")
	}
}

func TestSummarize(t *testing.T) {
	runs := []Report{
		{Fault: "kill", OK: true, Healed: true, UnavailableSec: 1, NewLeaderSec: 0.4, RejoinSec: 9, OldPrimary: "p1", NewPrimary: "p2", Audit: Audit{Acked: 100}},
		{Fault: "kill", OK: true, Healed: true, UnavailableSec: 3, NewLeaderSec: 0.5, RejoinSec: 11, OldPrimary: "p2", NewPrimary: "p3", Audit: Audit{Acked: 100}},
		{Fault: "kill", OK: false, Healed: false, UnavailableSec: 2, NewLeaderSec: 0.6, OldPrimary: "p3", NewPrimary: "p1", LostAcked: 2, Failures: []string{"boom"},
			SplitBrains: []SplitBrain{{}}, Audit: Audit{Acked: 100, Lost: []int64{1, 2}}},
		{Fault: "dcs-partition", OK: true, Healed: true, UnavailableSec: 24, LostAcked: 5, Audit: Audit{Acked: 10}},
	}
	s := Summarize([]faults.Fault{faults.Kill{}, faults.DCSPartition{}}, runs, topology.SyncOff)
	k := s[0]
	if k.Rounds != 3 || k.Passed != 2 || k.Healed != 2 || k.GapMedian != 2 || k.GapMax != 3 || k.NewLeaderMedian != 0.5 || k.RejoinMedian != 10 ||
		k.Lost != 2 || k.SplitBrains != 1 || k.Failovers != 3 || k.Acked != 300 || len(k.Failures) != 1 || k.Failures[0] != "round 3: boom" {
		t.Errorf("kill summary %+v", k)
	}
	if s[1].Note == "" || !strings.Contains(s[1].Note, "asynchronous") {
		t.Errorf("lost writes in asynchronous mode are explained: %+v", s[1])
	}
	if strict := Summarize([]faults.Fault{faults.DCSPartition{}}, runs, topology.SyncStrict); strict[0].Note != "" {
		t.Errorf("no excuse in strict mode: %q", strict[0].Note)
	}
}

// The report is one self-contained page: a title, the summary, a timeline
// per run in inline SVG, and nothing fetched from elsewhere.
func TestWriteHTML(t *testing.T) {
	tl := &Timeline{Cluster: "lab", Nodes: []string{"p1", "p2"}, Start: at(-2000), FaultAt: at(0), HealAt: at(3000), End: at(6000),
		Probes: []Probe{probe("p1", -1000, Writable), probe("p1", 100, Down), probe("p2", -1000, Replica), probe("p2", 2000, Writable)},
		Leader: []LeaderChange{{At: at(-2000), Holder: "p1"}, {At: at(400), Holder: ""}, {At: at(1900), Holder: "p2", Created: true}},
		Writes: []Write{{ID: 1, Sent: at(-500), Done: at(-490), Outcome: Acked}, {ID: 2, Sent: at(500), Done: at(600), Outcome: Failed},
			{ID: 3, Sent: at(700), Done: at(2700), Outcome: Unknown}, {ID: 4, Sent: at(2100), Done: at(2110), Outcome: Acked}},
		GapFrom: at(-490), GapTo: at(2110)}
	rep := Report{Fault: "kill", Target: "p1", OldPrimary: "p1", NewPrimary: "p2", OK: true, Timeline: tl, UnavailableSec: 2.6,
		SplitBrains: []SplitBrain{{From: at(2000), To: at(2050), Nodes: []string{"p1", "p2"}}}}
	m := &MatrixReport{Rounds: 1, Profile: "fast", SynchronousMode: "strict", OK: true, Summary: Summarize([]faults.Fault{faults.Kill{}}, []Report{rep}, "strict")}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, HTMLReport{Title: "pgha failover report <test>", Runs: []Report{rep}, Matrix: m}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"<title>pgha failover report &lt;test&gt;</title>", `id="pgha-report"`, `id="summary"`, "<svg", "fault: kill", "heal",
		"leader key", "write gap 2.60 s", "split brain", "p2", "0s", "+5s"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", "<link", "@import", "src="} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("the page refers to something outside it: %q", bad)
		}
	}
}
