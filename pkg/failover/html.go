package failover

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// HTMLReport is what WriteHTML draws: one or more runs and, for a matrix,
// its summary.
type HTMLReport struct {
	Title  string
	Runs   []Report
	Matrix *MatrixReport
}

// Colours of the picture, one per state.
var stateColours = map[NodeState]string{
	Writable: "#2e9d4f",
	Stalled:  "#e8a33d",
	Replica:  "#4a7fd0",
	Down:     "#9aa0a6",
}

var holderColours = []string{"#0e7490", "#b45309", "#be185d", "#4d7c0f", "#1e3a8a", "#78350f"}

const (
	svgWidth   = 1180.0
	labelWidth = 120.0
	laneHeight = 22.0
	laneGap    = 8.0
	topMargin  = 34.0
)

// WriteHTML writes one self-contained HTML page: inline SVG and CSS, no
// external assets.
func WriteHTML(w io.Writer, r HTMLReport) error {
	type runView struct {
		Heading string
		SVG     template.HTML
		Rows    [][2]string
		OK      bool
	}
	var runs []runView
	for i, rep := range r.Runs {
		heading := fmt.Sprintf("%s on %s", rep.Fault, orDash(rep.Target, rep.On))
		if r.Matrix != nil {
			heading = fmt.Sprintf("%d. %s", i+1, heading)
		}
		runs = append(runs, runView{Heading: heading, SVG: template.HTML(timelineSVG(rep)), Rows: figures(rep), OK: rep.OK})
	}
	data := struct {
		Title     string
		Generated string
		Matrix    *MatrixReport
		Runs      []runView
		Legend    template.HTML
	}{r.Title, time.Now().UTC().Format("2006-01-02 15:04:05 UTC"), r.Matrix, runs, template.HTML(legendSVG())}
	return page.Execute(w, data)
}

func orDash(s, alt string) string {
	if s != "" {
		return s
	}
	if alt == "" {
		return "-"
	}
	return alt
}

// figures are the table beside one run's picture.
func figures(r Report) [][2]string {
	sec := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	rows := [][2]string{
		{"result", map[bool]string{true: "passed", false: "FAILED"}[r.OK]},
		{"old primary → new primary", fmt.Sprintf("%s → %s", r.OldPrimary, r.NewPrimary)},
		{"timeline", fmt.Sprintf("%d → %d", r.OldTimeline, r.NewTimeline)},
		{"expected failover", r.ExpectFailover},
		{"in place after", sec(r.InPlaceSec)},
		{"held for", sec(r.HealSec)},
		{"new leader key after", sec(r.NewLeaderSec)},
		{"write gap", fmt.Sprintf("%.2f s (from %+.2f s to %+.2f s)", r.UnavailableSec, r.GapFromSec, r.GapToSec)},
		{"whole again after the heal", sec(r.RejoinSec)},
		{"writes acked / failed / unknown", fmt.Sprintf("%d / %d / %d", r.Audit.Acked, r.Audit.Failed, r.Audit.Unknown)},
		{"acknowledged writes lost", fmt.Sprint(r.LostAcked)},
		{"ids never sent but present", fmt.Sprint(len(r.Audit.Phantom))},
		{"split-brain windows", fmt.Sprint(len(r.SplitBrains))},
		{"probes", fmt.Sprint(r.Probes)},
		{"profile / synchronous mode", r.Profile + " / " + r.SynchronousMode},
	}
	if rr := r.Router; rr != nil {
		rows = append(rows, [2]string{"write gap through the router", fmt.Sprintf("%.2f s (%+.2f s beside the direct DSN)", rr.UnavailableSec, rr.DiffSec)},
			[2]string{"router replica port", fmt.Sprintf("%d answers, %d from a primary", rr.ReadOnlyAnswers, rr.ReadOnlyFromPrimary)})
	}
	if r.Archive != nil {
		rows = append(rows, [2]string{"WAL archive", fmt.Sprintf("%d segments %s … %s, %d missing; %d closed segments waiting at the heal (%d failed attempts); caught up %.2f s after the heal",
			r.Archive.Segments, r.Archive.From, r.Archive.To, len(r.Archive.Missing), r.Archive.WaitingAtHeal, r.Archive.FailedDuring, r.Archive.CaughtUpSec)})
	}
	for _, f := range r.Failures {
		rows = append(rows, [2]string{"failure", f})
	}
	return rows
}

// timelineSVG draws one run: a lane per node (its role over time, from the
// probes), the leader key's holder, every write, the fault and its heal,
// the write gap and any split brain.
func timelineSVG(r Report) string {
	tl := r.Timeline
	if tl == nil {
		return `<p class="note">no timeline recorded</p>`
	}
	from := tl.FaultAt.Add(-5 * time.Second)
	if tl.Start.After(from) {
		from = tl.Start
	}
	to := tl.End
	if !to.After(from) {
		to = from.Add(time.Second)
	}
	span := to.Sub(from).Seconds()
	plotW := svgWidth - labelWidth - 20
	x := func(t time.Time) float64 {
		v := labelWidth + t.Sub(from).Seconds()/span*plotW
		return math.Max(labelWidth, math.Min(labelWidth+plotW, v))
	}
	lanes := len(tl.Nodes) + 2 // nodes, leader key, writes
	height := topMargin + float64(lanes)*(laneHeight+laneGap) + 30
	laneY := func(i int) float64 { return topMargin + float64(i)*(laneHeight+laneGap) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" class="timeline" role="img" aria-label="timeline of %s">`,
		svgWidth, height, svgWidth, height, template.HTMLEscapeString(r.Fault))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%.0f" height="%.0f" fill="#ffffff"/>`, svgWidth, height)

	// Lanes: backgrounds and labels.
	labels := append(append([]string{}, tl.Nodes...), "leader key", "writes")
	for i, l := range labels {
		y := laneY(i)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="#f3f4f6"/>`, labelWidth, y, plotW, laneHeight)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="lane">%s</text>`, labelWidth-8, y+laneHeight/2+4, template.HTMLEscapeString(l))
	}

	// Node lanes: each probe's state lasts from its answer to the next answer.
	for i, node := range tl.Nodes {
		var ps []Probe
		for _, p := range tl.Probes {
			if p.Node == node {
				ps = append(ps, p)
			}
		}
		sort.Slice(ps, func(a, c int) bool { return ps[a].Done.Before(ps[c].Done) })
		y := laneY(i)
		for j := 0; j < len(ps); {
			k := j
			for k+1 < len(ps) && ps[k+1].State == ps[j].State {
				k++
			}
			end := tl.End
			if k+1 < len(ps) {
				end = ps[k+1].Done
			}
			x0, x1 := x(ps[j].Done), x(end)
			if x1 > x0 {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s: %s from %+.2f s to %+.2f s%s</title></rect>`,
					x0, y, x1-x0, laneHeight, stateColours[ps[j].State], node, ps[j].State,
					ps[j].Done.Sub(tl.FaultAt).Seconds(), end.Sub(tl.FaultAt).Seconds(), insideNote(ps[j]))
			}
			j = k + 1
		}
	}

	// The leader key's holder.
	colourOf := map[string]string{}
	for i, n := range tl.Nodes {
		colourOf[n] = holderColours[i%len(holderColours)]
	}
	ly := laneY(len(tl.Nodes))
	for i, c := range tl.Leader {
		end := tl.End
		if i+1 < len(tl.Leader) {
			end = tl.Leader[i+1].At
		}
		x0, x1 := x(c.At), x(end)
		if x1 <= x0 {
			continue
		}
		fill, text := "#d1d5db", "no leader"
		if c.Holder != "" {
			fill, text = colourOf[c.Holder], c.Holder
			if fill == "" {
				fill = "#6b7280"
			}
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>leader key: %s from %+.2f s</title></rect>`,
			x0, ly, x1-x0, laneHeight, fill, text, c.At.Sub(tl.FaultAt).Seconds())
		if x1-x0 > 60 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="holder">%s</text>`, x0+4, ly+laneHeight/2+4, template.HTMLEscapeString(text))
		}
		if c.Created && c.Holder != "" {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#111827" stroke-width="2"/>`, x0, ly-2, x0, ly+laneHeight+2)
		}
	}

	// Writes, in bins of 100 ms: the worst outcome of the bin.
	wy := laneY(len(tl.Nodes) + 1)
	type bin struct{ acked, failed, unknown int }
	bins := map[int]*bin{}
	for _, w := range tl.Writes {
		if w.Sent.Before(from) {
			continue
		}
		k := int(w.Sent.Sub(from) / (100 * time.Millisecond))
		if bins[k] == nil {
			bins[k] = &bin{}
		}
		switch w.Outcome {
		case Acked:
			bins[k].acked++
		case Failed:
			bins[k].failed++
		default:
			bins[k].unknown++
		}
	}
	keys := make([]int, 0, len(bins))
	for k := range bins {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		bn := bins[k]
		t0 := from.Add(time.Duration(k) * 100 * time.Millisecond)
		x0, x1 := x(t0), x(t0.Add(100*time.Millisecond))
		fill := "#2e9d4f"
		switch {
		case bn.unknown > 0:
			fill = "#eab308"
		case bn.failed > 0:
			fill = "#d64545"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.2f" height="%.0f" fill="%s"/>`, x0, wy, math.Max(x1-x0, 0.6), laneHeight, fill)
	}

	// The write gap, shaded across every lane.
	bottom := laneY(lanes-1) + laneHeight
	if !tl.GapFrom.IsZero() && tl.GapTo.After(tl.GapFrom) {
		x0, x1 := x(tl.GapFrom), x(tl.GapTo)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#d64545" fill-opacity="0.13" stroke="#d64545" stroke-opacity="0.5" stroke-dasharray="3 3"><title>write gap %.2f s</title></rect>`,
			x0, topMargin-4, math.Max(x1-x0, 1), bottom-topMargin+8, tl.GapTo.Sub(tl.GapFrom).Seconds())
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="gap">write gap %.2f s</text>`, x0+3, bottom+16, tl.GapTo.Sub(tl.GapFrom).Seconds())
	}
	// Split brains, across the node lanes.
	for _, sb := range r.SplitBrains {
		x0, x1 := x(sb.From), x(sb.To)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#7c3aed" fill-opacity="0.35" stroke="#7c3aed"><title>split brain: %s</title></rect>`,
			x0, topMargin-4, math.Max(x1-x0, 2), laneY(len(tl.Nodes))-topMargin, template.HTMLEscapeString(sb.String()))
	}
	// The fault and the heal.
	for _, m := range []struct {
		at     time.Time
		label  string
		colour string
	}{{tl.FaultAt, "fault: " + r.Fault, "#b91c1c"}, {tl.InPlaceAt, "in place", "#b91c1c"}, {tl.HealAt, "heal", "#15803d"}} {
		if m.at.IsZero() || (m.label == "in place" && m.at.Sub(tl.FaultAt) < 300*time.Millisecond) {
			continue
		}
		if m.label == "in place" {
			xm := x(m.at)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1" stroke-dasharray="2 3"><title>the fault in place %.2f s after it began</title></line>`,
				xm, topMargin-4, xm, bottom+4, m.colour, m.at.Sub(tl.FaultAt).Seconds())
			continue
		}
		xm := x(m.at)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="6 3"/>`, xm, topMargin-14, xm, bottom+4, m.colour)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="marker" fill="%s">%s</text>`, xm+4, topMargin-18, m.colour, template.HTMLEscapeString(m.label))
	}
	// The time axis, in seconds from the fault.
	step := niceStep(span)
	first := math.Ceil(from.Sub(tl.FaultAt).Seconds()/step) * step
	for s := first; s <= to.Sub(tl.FaultAt).Seconds(); s += step {
		xt := x(tl.FaultAt.Add(time.Duration(s * float64(time.Second))))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#9ca3af"/>`, xt, bottom+2, xt, bottom+7)
		label := fmt.Sprintf("%+gs", s)
		if math.Abs(s) < 1e-9 {
			label = "0s"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick">%s</text>`, xt, bottom+28, label)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func insideNote(p Probe) string {
	if p.Inside {
		return " (probed inside its container)"
	}
	return ""
}

// niceStep picks a tick spacing that gives 8 to 20 ticks.
func niceStep(span float64) float64 {
	for _, s := range []float64{0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300} {
		if span/s <= 20 {
			return s
		}
	}
	return 600
}

func legendSVG() string {
	items := []struct{ colour, label string }{
		{stateColours[Writable], "primary, write acknowledged"},
		{stateColours[Stalled], "primary, write not acknowledged"},
		{stateColours[Replica], "replica (in recovery)"},
		{stateColours[Down], "no answer"},
		{"#d64545", "write failed"},
		{"#eab308", "write outcome unknown"},
		{"#7c3aed", "split brain"},
	}
	var b strings.Builder
	var body strings.Builder
	x := 0
	for _, it := range items {
		fmt.Fprintf(&body, `<rect x="%d" y="5" width="14" height="14" fill="%s"/><text x="%d" y="16" class="legend">%s</text>`, x, it.colour, x+19, it.label)
		x += 19 + len(it.label)*7 + 18
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="24" class="legend">%s`, x, body.String())
	b.WriteString(`</svg>`)
	return b.String()
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"sec": func(v float64) string { return fmt.Sprintf("%.2f", v) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.4 -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #111827; margin: 24px; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 6px; }
p.meta { color: #4b5563; margin: 0 0 14px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #d1d5db; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.fail { color: #b91c1c; font-weight: 600; }
.pass { color: #15803d; font-weight: 600; }
svg text.lane { font-size: 12px; text-anchor: end; fill: #111827; }
svg text.holder { font-size: 11px; fill: #ffffff; }
svg text.tick { font-size: 11px; text-anchor: middle; fill: #4b5563; }
svg text.marker { font-size: 12px; font-weight: 600; }
svg text.gap { font-size: 11px; fill: #b91c1c; }
svg text.legend { font-size: 12px; fill: #111827; }
.run { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
</style>
</head>
<body>
<h1 id="pgha-report">{{.Title}}</h1>
<p class="meta">written by pgha failover-test at {{.Generated}}; each node probed about every 100 ms (pg_is_in_recovery() and a write); times are seconds from the fault</p>
{{with .Matrix}}
<h2>Summary: {{.Rounds}} round(s) per fault, profile {{.Profile}}, synchronous mode {{.SynchronousMode}} — {{if .OK}}<span class="pass">passed</span>{{else}}<span class="fail">FAILED</span>{{end}}</h2>
<table id="summary">
<tr><th>fault</th><th>on</th><th>failover</th><th>passed</th><th>healed</th><th>write gap median / max (s)</th><th>new leader median / max (s)</th><th>whole again median / max (s)</th><th>acked / lost / never sent present</th><th>split brains</th></tr>
{{range .Summary}}<tr><td>{{.Fault}}</td><td>{{.On}}</td><td>{{.ExpectFailover}} ({{.Failovers}} seen)</td><td class="num">{{.Passed}}/{{.Rounds}}</td><td class="num">{{.Healed}}/{{.Rounds}}</td><td class="num">{{sec .GapMedian}} / {{sec .GapMax}}</td><td class="num">{{if .NewLeaderRounds}}{{sec .NewLeaderMedian}} / {{sec .NewLeaderMax}}{{else}}–{{end}}</td><td class="num">{{sec .RejoinMedian}} / {{sec .RejoinMax}}</td><td class="num">{{.Acked}} / {{.Lost}} / {{.NeverSent}}</td><td class="num">{{.SplitBrains}}</td></tr>
{{if .Note}}<tr><td></td><td colspan="9">{{.Note}}</td></tr>{{end}}{{end}}
</table>
{{range .Failures}}<p class="fail">{{.}}</p>{{end}}
{{end}}
{{.Legend}}
{{range .Runs}}
<h2>{{.Heading}} — {{if .OK}}<span class="pass">passed</span>{{else}}<span class="fail">FAILED</span>{{end}}</h2>
<div class="run">
{{.SVG}}
<table class="figures">{{range .Rows}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
</div>
{{end}}
</body>
</html>
`))
