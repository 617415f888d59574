package cli

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/mattn/go-runewidth"
)

// Tables as pgha prints them, with the longest values seen: an e2e cluster's
// names, a guard decision, a failed check, an incremental backup.
var tableFixtures = map[string]tableSpec{
	"status": {
		Headers: []string{"SERVICE", "CONTAINER", "IMAGE", "ROLE", "PORTS", "STATUS"},
		Rows: [][]string{
			{"etcd", "e2e-testtables-5f3a-etcd1", "pgha/etcd:152b7faca6af", "leader", "127.0.0.1:3679->2379", "running, healthy"},
			{"etcd", "e2e-testtables-5f3a-etcd2", "pgha/etcd:152b7faca6af", "member", "127.0.0.1:23679->2379", "running, healthy"},
			{"patroni", "e2e-testtables-5f3a-patroni1", "pgha/patroni:aeee023fd8c5", "replica", "127.0.0.1:6735->5432 127.0.0.1:9308->8008", "running, streaming"},
			{"patroni", "e2e-testtables-5f3a-patroni2", "pgha/patroni:aeee023fd8c5", "primary", "127.0.0.1:6736->5432 127.0.0.1:9310->8008", "running"},
			{"objectstore", "e2e-testtables-5f3a-versitygw", "pgha/objectstore:3764c6a4a0a7", "s3", "127.0.0.1:10300->9000", "running, healthy"},
			{"guard", "e2e-testtables-5f3a-guard", "pgha/guard:c586e7df190f", "fencing", "", "running, watching; deleted key 19:31:06"},
		},
		Wrap: []string{"STATUS", "PORTS", "IMAGE", "CONTAINER"},
	},
	"verify": {
		Headers: []string{"", "GROUP", "CHECK", "DETAIL", "TOOK"},
		Rows: [][]string{
			{"✓", "etcd", "member etcd1", "healthy, etcd 3.5.16, leader", "12ms"},
			{"✓", "postgres", "patroni2 recovery state", "pg_is_in_recovery() = false, agrees with Patroni (primary)", "30ms"},
			{"✓", "postgres", "WAL archived to the object store", "segment 000000010000000000000004 archived in 189ms", "189ms"},
			{"✗", "patroni", "patroni1", "REST API not answering on 127.0.0.1:8008 (container patroni1 is exited (137)): Get \"http://127.0.0.1:8008/patroni\": dial tcp 127.0.0.1:8008: connect: connection refused", "2ms"},
			{"✓", "objectstore", "authenticated S3 over TLS", "ListBuckets on https://127.0.0.1:10300 with the cluster's CA", "28ms"},
		},
		Wrap: []string{"DETAIL", "CHECK"},
	},
	"images": {
		Headers: []string{"ROLE", "IMAGE", "SOURCE", "STATE"},
		Rows: [][]string{
			{"patroni", "pgha/patroni:aeee023fd8c5", "local build from Debian trixie offline base (mmdebstrap)", "present"},
			{"objectstore", "pgha/objectstore:3764c6a4a0a7", "local build from versitygw v1.8.0 built from its Go module", "present"},
			{"guard", "pgha/guard:c586e7df190f", "local build from the pgha binary /work/wt-tables/bin/pgha", "unavailable: the pgha binary is not a static Linux binary; set PGHA_GUARD_BINARY"},
		},
		Wrap: []string{"SOURCE", "STATE", "IMAGE"},
	},
	"etcd keys": {
		Headers: []string{"KEY", "VALUE", "LEASE TTL"},
		Rows: [][]string{
			{"/service/pg-cluster/config", `{"loop_wait":1,"maximum_lag_on_failover":1048576,"postgresql":{"param…`, ""},
			{"/service/pg-cluster/leader", "patroni2", "19s"},
			{"/service/pg-cluster/members/patroni1", `{"conn_url":"postgres://patroni1:5432/postgres","api_url":"http://pat…`, "19s"},
		},
		Clip: []string{"VALUE"},
	},
	"backups": {
		Headers: []string{"LABEL", "TYPE", "START", "TOOK", "DB SIZE", "STORED", "WAL", "DEPENDS ON"},
		Rows: [][]string{
			{"20261126-211148F", "full", "2026-11-26 21:11:48", "6s", "22.5 MiB", "4.3 MiB", "000000010000000000000011 … 000000010000000000000011", ""},
			{"20261126-211148F_20261126-211155I", "incr", "2026-11-26 21:11:55", "2s", "22.5 MiB", "463 B", "000000010000000000000012 … 000000010000000000000013", "20261126-211148F"},
		},
		Wrap: []string{"WAL", "LABEL", "START", "DEPENDS ON"},
	},
	"failover": {
		Headers: []string{"MEASURE", "VALUE"},
		Rows: [][]string{
			{"fault", "kill on patroni2"},
			{"rejoined as streaming replica after", "9.03 s"},
			{"guard decision", "deleted the leader key of patroni2 at 02:48:50.845 (die) (218 ms after the engine's event, 211 ms of it the engine's confirmation): patroni2 is exited (exit code 137) according to the engine and the leader key still names it: delete it (value and revision 13 compared)"},
		},
		Wrap: []string{"VALUE", "MEASURE"},
	},
	"no wrap hint": {
		Headers: []string{"A", "B", "C"},
		Rows:    [][]string{{strings.Repeat("a", 70), strings.Repeat("b", 70), "ccc"}, {"x", "", "日本語のテキスト"}, {"tab\there", "cr\rlf", "a"}},
	},
	"empty": {Headers: []string{"KEY", "VALUE"}},
}

func TestTablesFitAndAlign(t *testing.T) {
	for name, spec := range tableFixtures {
		for _, width := range []int{60, 80, 100, 120, 200} {
			t.Run(fmt.Sprintf("%s/%d", name, width), func(t *testing.T) {
				spec.Bold = width%40 == 0 // escape codes must not count
				out := renderTable(spec, width)
				if os.Getenv("PGHA_SHOW_TABLES") != "" {
					t.Logf("\n%s", out)
				}
				checkTable(t, out, width)
				if natural := naturalWidth(spec); natural <= width && len(spec.Rows) > 0 && strings.Count(out, "\n") != len(spec.Rows)+4 {
					t.Errorf("the table is %d wide, fits in %d, yet a row wrapped:\n%s", natural, width, out)
				}
			})
		}
	}
}

// checkTable asserts that out is one bordered table ending with a newline,
// whose lines fit width and whose column borders line up.
func checkTable(t *testing.T, out string, width int) {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("no newline at the end:\n%s", out)
	}
	lines := strings.Split(strings.TrimSuffix(ansi.Strip(out), "\n"), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "┌") || !strings.HasPrefix(lines[len(lines)-1], "└") {
		t.Fatalf("not a bordered table:\n%s", out)
	}
	want := borderColumns(lines[0], "┌┬┐")
	for i, l := range lines {
		if w := runewidth.StringWidth(l); w > width {
			t.Errorf("line %d is %d cells wide, over %d:\n%s", i+1, w, width, l)
		}
		var got []int
		switch {
		case i == 0:
			got = want
		case i == len(lines)-1:
			got = borderColumns(l, "└┴┘")
		case strings.HasPrefix(l, "├"):
			got = borderColumns(l, "├┼┤")
		default:
			got = borderColumns(l, "│")
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("line %d has borders at %v, the top at %v:\n%s", i+1, got, want, strings.Join(lines, "\n"))
		}
	}
}

// borderColumns are the display columns of the runes of set in line.
func borderColumns(line, set string) []int {
	var cols []int
	col := 0
	for _, r := range line {
		if strings.ContainsRune(set, r) {
			cols = append(cols, col)
		}
		col += runewidth.RuneWidth(r)
	}
	return cols
}

func TestColumnWidths(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		rows    [][]string
		kinds   []columnKind
		budget  int
		want    []int
	}{
		{"fits: natural widths", []string{"A", "BB"}, [][]string{{"xxx", "y"}}, []columnKind{fixed, wrapped}, 10, []int{3, 2}},
		{"the wrapping column gives way", []string{"K", "DETAIL"}, [][]string{{"key", "a few words of detail"}}, []columnKind{fixed, wrapped}, 12, []int{3, 9}},
		{"the widest wrapping column first", []string{"K", "D", "E"}, [][]string{{"key", "aaaaaaaaaa bbbbbbbbbbbb", "cc dddddddddd"}}, []columnKind{fixed, wrapped, wrapped}, 30, []int{3, 14, 13}},
		{"down to its longest word first", []string{"K", "D", "E"}, [][]string{{"key", "aaaaaaaaaa bbbbbbbbbbbb", "cc dddddddddd"}}, []columnKind{fixed, wrapped, wrapped}, 25, []int{3, 12, 10}},
		{"then below it", []string{"K", "D", "E"}, [][]string{{"key", "aaaaaaaaaa bbbbbbbbbbbb", "cc dddddddddd"}}, []columnKind{fixed, wrapped, wrapped}, 20, []int{3, 9, 8}},
		{"then the widest fixed column is cut", []string{"NAME", "D"}, [][]string{{"a-very-long-name", "some words"}}, []columnKind{fixed, wrapped}, 16, []int{8, 8}},
		{"a clipped column gives way first, on one line", []string{"KEY", "VALUE", "TTL"}, [][]string{{"/service/pg-cluster/members/patroni1", strings.Repeat("v", 70), "19s"}}, []columnKind{fixed, clipped, fixed}, 60, []int{36, 21, 3}},
		{"at worst one cell each", []string{"A", "B", "C"}, [][]string{{"aaa", "bbb", "ccc"}}, []columnKind{wrapped, fixed, fixed}, 3, []int{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := columnWidths(tc.headers, tc.rows, tc.kinds, tc.budget); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("widths = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWrapCell(t *testing.T) {
	for _, tc := range []struct {
		in    string
		width int
		want  string
	}{
		{"running, watching; deleted key 19:31:06", 21, "running, watching;\ndeleted key 19:31:06"},
		{"127.0.0.1:6735->5432 127.0.0.1:9308->8008", 21, "127.0.0.1:6735->5432\n127.0.0.1:9308->8008"},
		{"pgha/objectstore:3764c6a4a0a7", 20, "pgha/objectstore:\n3764c6a4a0a7"},
		{"20261126-211148F_20261126-211155I", 17, "20261126-211148F_\n20261126-211155I"},
		{"20261126-211148F_20261126-211155I", 16, "20261126-\n211148F_\n20261126-211155I"},
		{"2026-11-26 21:11:48", 8, "2026-11-\n26\n21:11:48"},
		{"2026-11-26 21:11:48", 9, "2026-11-\n26\n21:11:48"},
		{"127.0.0.1:23679->2379", 16, "127.0.0.1:\n23679->2379"},
		{"2026-11-26 21:11:48", 10, "2026-11-26\n21:11:48"},
		{"abcdefghij", 4, "abcd\nefgh\nij"},
		{"xx event, 211 ms", 8, "xx\nevent,\n211 ms"},
		{"xx event- 211 ms", 8, "xx\nevent-\n211 ms"},
	} {
		if got := wrapCell(tc.in, tc.width); got != tc.want {
			t.Errorf("wrapCell(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}

func TestTerminalWidthFallsBack(t *testing.T) {
	t.Setenv("COLUMNS", "132")
	if w := terminalWidth(-1); w != 132 {
		t.Errorf("with COLUMNS=132: %d", w)
	}
	t.Setenv("COLUMNS", "")
	if w := terminalWidth(-1); w != 80 {
		t.Errorf("with neither a terminal nor COLUMNS: %d", w)
	}
}

func TestLongestWord(t *testing.T) {
	for in, want := range map[string]int{
		"127.0.0.1:23679->2379 127.0.0.1:8008->8008": 11,
		"running, watching; deleted key 19:31:06":    9,
		"20261126-211148F_20261126-211155I":          9,
		"https://127.0.0.1:10300":                    10,
		"pgha/objectstore:3764c6a4a0a7":              12,
		"000000010000000000000011":                   24,
		"2026-11-26 21:11:48":                        10,
		"":                                           0,
	} {
		if got := longestWord(in); got != want {
			t.Errorf("longestWord(%q) = %d, want %d", in, got, want)
		}
	}
}

// Wrapping keeps every character but the spaces where lines break, in
// order, and no line is wider than the column.
func TestWrapCellKeepsTheText(t *testing.T) {
	cells := []string{"running, watching; deleted key 19:31:06", "127.0.0.1:6735->5432 127.0.0.1:9308->8008",
		"pgha/objectstore:3764c6a4a0a7", "20261126-211148F_20261126-211155I", "2026-11-26 21:11:48",
		"000000010000000000000012 … 000000010000000000000013", `{"conn_url":"postgres://patroni1:5432/postgres","api_url":"http://patroni1:8008/patroni"}`,
		"REST API not answering on 127.0.0.1:8008 (container patroni1 is exited (137))", "日本語のテキストです", "a  b   c", "",
		"deleted the leader key of patroni2 at 02:48:50.845 (die) (218 ms after the engine's event, 211 ms of it the engine's confirmation)"}
	noSpace := func(s string) string { return strings.NewReplacer(" ", "", "\n", "").Replace(s) }
	for _, c := range cells {
		for width := 1; width <= 40; width++ {
			got := wrapCell(c, width)
			if noSpace(got) != noSpace(c) {
				t.Errorf("wrapCell(%q, %d) = %q: text changed", c, width, got)
			}
			for _, l := range strings.Split(got, "\n") {
				if w := runewidth.StringWidth(l); w > max(width, 2) {
					t.Errorf("wrapCell(%q, %d): line %q is %d wide", c, width, l, w)
				}
			}
		}
	}
}

// printTable measures the terminal ($COLUMNS here, stdout being a buffer)
// on a terminal, and off one writes the rows tab-separated, whatever the
// width, as it always has.
func TestPrintTableOnAndOffATerminal(t *testing.T) {
	spec := tableFixtures["verify"]
	var want strings.Builder
	want.WriteString(strings.Join(spec.Headers, "\t") + "\n")
	for _, r := range spec.Rows {
		want.WriteString(strings.Join(r, "\t") + "\n")
	}
	for _, width := range []int{60, 80, 100, 120, 200} {
		t.Setenv("COLUMNS", fmt.Sprint(width))
		a, out, _ := newTestApp()
		a.printTable(spec.Headers, spec.Rows, spec.Wrap...)
		if out.String() != want.String() {
			t.Errorf("off a terminal at COLUMNS=%d:\n%q\nwant\n%q", width, out.String(), want.String())
		}
		a, out, _ = newTestApp()
		a.stdoutTTY = true
		a.printTable(spec.Headers, spec.Rows, spec.Wrap...)
		checkTable(t, out.String(), width)
	}
}

// naturalWidth is how wide the table is with no cell wrapped.
func naturalWidth(spec tableSpec) int {
	w := tableOverhead(len(spec.Headers))
	for i, h := range spec.Headers {
		c := runewidth.StringWidth(h)
		for _, r := range spec.Rows {
			c = max(c, runewidth.StringWidth(cellText.Replace(r[i])))
		}
		w += c
	}
	return w
}
