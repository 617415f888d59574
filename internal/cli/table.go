package cli

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/charmbracelet/x/ansi"
	"golang.org/x/term"
)

// Tables on a terminal are bordered and never wider than the terminal, as
// kubectl's, gh's and docker's are never wider than theirs. Each table names
// the columns that carry free text (a check's detail, a status, an image
// reference, a WAL range): those give up width first and wrap inside their
// own cells, at spaces, hyphens, commas and underscores, breaking a word only
// when a column is narrower than it. The other columns keep their width;
// when even they do not fit, the widest are cut short with "…".

// tableSpec is a table to render: its columns, its rows and which columns
// may wrap. A live view renders the same spec again at each new width.
type tableSpec struct {
	Headers []string
	Rows    [][]string
	// Wrap names, by header, the columns that carry free text.
	Wrap []string
	// Clip names free-text columns that are a one-line preview (the whole
	// text is elsewhere): they give up width first too, cut short with "…".
	Clip []string
	// Bold renders the header row in bold (colour is on).
	Bold bool
}

const (
	cellPadding = 1 // spaces on each side of a cell's text
	// softFloorCap is the most a wrapping column keeps for its longest word
	// before it gives up width to save the other columns.
	softFloorCap = 24
	// hardFloor is the narrowest a wrapping column gets (unless its header is
	// wider) before the other columns are cut short.
	hardFloor = 8
	// cutFloor is the narrowest a cut-short column gets before every column
	// shrinks to one cell.
	cutFloor = 5
	// wordBreaks are where a wrapping cell's lines end besides spaces and
	// hyphens; hardBreaks, where a word too long for its line breaks.
	wordBreaks = ",_"
	hardBreaks = ",_:/-"
)

// renderTable renders the table as a bordered box no wider than width
// terminal cells (each line's display width, escape codes aside), ending
// with a newline. Lines never exceed width unless width is below what one
// cell per column and the borders take.
func renderTable(spec tableSpec, width int) string {
	n := len(spec.Headers)
	for _, r := range spec.Rows {
		n = max(n, len(r))
	}
	if n == 0 {
		return ""
	}
	headers := padRow(spec.Headers, n)
	rows := make([][]string, len(spec.Rows))
	for i, r := range spec.Rows {
		rows[i] = padRow(r, n)
	}
	kinds := make([]columnKind, n)
	for i, h := range headers {
		switch {
		case slices.Contains(spec.Wrap, h):
			kinds[i] = wrapped
		case slices.Contains(spec.Clip, h):
			kinds[i] = clipped
		}
	}
	widths := columnWidths(headers, rows, kinds, width-tableOverhead(n))

	fit := func(cells []string) []string {
		out := make([]string, n)
		for i, c := range cells {
			if kinds[i] == wrapped && ansi.StringWidth(headers[i]) <= widths[i] {
				out[i] = wrapCell(c, widths[i])
			} else {
				out[i] = cutCell(c, widths[i])
			}
		}
		return out
	}
	fitted := make([][]string, len(rows))
	for i, r := range rows {
		fitted[i] = fit(r)
	}
	// Headers never wrap (lipgloss gives the header row one line): a
	// wrapping column is never narrower than its header unless every column
	// has been cut to the bone.
	hdrs := make([]string, n)
	for i, h := range headers {
		hdrs[i] = cutCell(h, widths[i])
	}

	cell := lipgloss.NewStyle().Padding(0, cellPadding)
	header := cell.Bold(spec.Bold)
	t := table.New().Headers(hdrs...).Rows(fitted...).Border(lipgloss.NormalBorder()).
		StyleFunc(func(row, col int) lipgloss.Style {
			// The width is the cell's, padding included: lipgloss then
			// sizes every column exactly as computed here.
			if row == table.HeaderRow {
				return header.Width(widths[col] + 2*cellPadding)
			}
			return cell.Width(widths[col] + 2*cellPadding)
		})
	return t.Render() + "\n"
}

// columnKind is how a column fits a narrow terminal.
type columnKind int

const (
	fixed   columnKind = iota // keeps its width; cut short last
	wrapped                   // free text, wraps inside its cells
	clipped                   // free text, cut short to one line
)

// tableOverhead is what borders and padding take in a table of n columns.
func tableOverhead(n int) int { return n*(2*cellPadding+1) + 1 }

// padRow gives r n cells, tabs expanded as lipgloss renders them (four
// spaces) so that they are measured as shown, and carriage returns dropped.
func padRow(r []string, n int) []string {
	out := make([]string, n)
	for i, c := range r {
		out[i] = cellText.Replace(c)
	}
	return out
}

var cellText = strings.NewReplacer("\t", "    ", "\r", "")

// columnWidths gives each column the width of its text (padding and borders
// not included) and, when their sum is over budget, takes width back one
// cell at a time, in stages:
//  1. from the free-text columns, down to their longest word (a clipped
//     column: its first softFloorCap cells), at most softFloorCap, at least
//     hardFloor;
//  2. from the free-text columns, down to hardFloor (or their header), words
//     breaking;
//  3. from the other columns, cut short down to cutFloor;
//  4. from every column, down to one cell.
//
// Within a stage each cell comes from the column where it costs the fewest
// added lines to the table (so that wrapping gathers in rows that already
// wrap), the widest of those (then the rightmost); then width moves between
// wrapping columns, within that stage's floors, while that makes the table
// shorter.
func columnWidths(headers []string, rows [][]string, kinds []columnKind, budget int) []int {
	n := len(headers)
	natural := make([]int, n)
	words := make([]int, n)
	for i, h := range headers {
		natural[i] = cellWidth(h)
		for _, r := range rows {
			natural[i] = max(natural[i], cellWidth(r[i]))
			switch kinds[i] {
			case wrapped:
				words[i] = max(words[i], longestWord(r[i]))
			case clipped:
				words[i] = natural[i]
			}
		}
	}
	widths := slices.Clone(natural)
	excess := sum(widths) - budget
	if excess <= 0 {
		return widths
	}
	floors := func(f func(i int) int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = min(natural[i], f(i))
		}
		return out
	}
	hdr := func(i int) int { return ansi.StringWidth(headers[i]) }
	stages := [][]int{
		floors(func(i int) int {
			if kinds[i] == fixed {
				return natural[i]
			}
			return max(hdr(i), hardFloor, min(words[i], softFloorCap))
		}),
		floors(func(i int) int {
			if kinds[i] == fixed {
				return natural[i]
			}
			return max(hdr(i), hardFloor)
		}),
		floors(func(i int) int {
			if kinds[i] == fixed {
				return cutFloor
			}
			return max(hdr(i), hardFloor)
		}),
		floors(func(int) int { return 1 }),
	}
	l := newLineCounter(headers, rows, kinds)
	for _, floor := range stages {
		if excess <= 0 {
			break
		}
		for ; excess > 0; excess-- {
			best, bestCost := -1, 0
			for i, w := range widths {
				if w <= floor[i] {
					continue
				}
				c := l.cost(widths, i)
				if best < 0 || c < bestCost || c == bestCost && w >= widths[best] {
					best, bestCost = i, c
				}
			}
			if best < 0 {
				break
			}
			widths[best]--
		}
		if excess <= 0 {
			l.improve(widths, natural, floor)
		}
	}
	return widths
}

// lineCounter counts the lines of the table's rows at given column widths.
type lineCounter struct {
	headers []string
	rows    [][]string
	kinds   []columnKind
	memo    map[[2]int][]int // column, width → lines of each row's cell
}

func newLineCounter(headers []string, rows [][]string, kinds []columnKind) *lineCounter {
	return &lineCounter{headers: headers, rows: rows, kinds: kinds, memo: map[[2]int][]int{}}
}

// lines is how many lines each row's cell of column c takes at width w.
func (l *lineCounter) lines(c, w int) []int {
	if ls, ok := l.memo[[2]int{c, w}]; ok {
		return ls
	}
	ls := make([]int, len(l.rows))
	for r, row := range l.rows {
		if l.kinds[c] == wrapped && w >= ansi.StringWidth(l.headers[c]) {
			ls[r] = strings.Count(wrapCell(row[c], w), "\n") + 1
		} else {
			ls[r] = strings.Count(row[c], "\n") + 1
		}
	}
	l.memo[[2]int{c, w}] = ls
	return ls
}

// improve moves width from one wrapping column to another, within the
// floors, while that makes the table shorter: taking one cell at a time from the cheapest
// column can leave a long cell of one column wrapped over many lines while
// another column keeps width that saves none.
func (l *lineCounter) improve(widths, natural, floor []int) {
	best := l.total(widths)
	for {
		from, to, by := -1, -1, 0
		for a := range widths {
			for b := range widths {
				if a == b || l.kinds[a] != wrapped || l.kinds[b] != wrapped || widths[b] >= natural[b] {
					continue
				}
				for k := 1; widths[a]-k >= floor[a] && widths[b]+k <= natural[b]; k++ {
					widths[a], widths[b] = widths[a]-k, widths[b]+k
					if t := l.total(widths); t < best {
						best, from, to, by = t, a, b, k
					}
					widths[a], widths[b] = widths[a]+k, widths[b]-k
				}
			}
		}
		if from < 0 {
			return
		}
		widths[from], widths[to] = widths[from]-by, widths[to]+by
	}
}

// total is how many lines the table's rows take at the widths.
func (l *lineCounter) total(widths []int) int {
	t := 0
	for r := range l.rows {
		h := 1
		for c, w := range widths {
			h = max(h, l.lines(c, w)[r])
		}
		t += h
	}
	return t
}

// cost is how many lines the table gains when column c is one cell narrower.
func (l *lineCounter) cost(widths []int, c int) int {
	now, then := l.lines(c, widths[c]), l.lines(c, widths[c]-1)
	gain := 0
	for r := range l.rows {
		others := 0
		for o, w := range widths {
			if o != c {
				others = max(others, l.lines(o, w)[r])
			}
		}
		gain += max(then[r], others) - max(now[r], others)
	}
	return gain
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// cellWidth is the display width of a cell's widest line.
func cellWidth(s string) int {
	w := 0
	for _, l := range strings.Split(s, "\n") {
		w = max(w, ansi.StringWidth(l))
	}
	return w
}

// longestWord is the widest run of a cell that wrapping need not break: a
// line may end at a space, or after a hyphen or one of hardBreaks (an image
// reference wraps as "pgha/objectstore:" and "3764c6a4a0a7"), not inside a
// date or a port mapping's arrow.
func longestWord(s string) int {
	w := 0
	glued(s, func(s string) string {
		for _, f := range strings.Fields(s) {
			for _, word := range strings.SplitAfter(strings.Map(func(r rune) rune {
				if strings.ContainsRune(hardBreaks, r) {
					return '-'
				}
				return r
			}, f), "-") {
				w = max(w, ansi.StringWidth(word))
			}
		}
		return s
	})
	return w
}

// wrapCell wraps s to lines of at most width cells: at spaces, or after a
// hyphen or one of wordBreaks; a word still too long breaks after the last
// of hardBreaks that fits, else at the width.
func wrapCell(s string, width int) string {
	return glued(s, func(s string) string {
		var out []string
		for _, p := range strings.Split(s, "\n") {
			out = append(out, wrapParagraph(p, width)...)
		}
		return strings.Join(out, "\n")
	})
}

// wrapParagraph takes lines off p one at a time: the first line ansi's word
// wrapping makes of what is left, or, when that is too wide (a word longer
// than the width, or a breakpoint ansi lets stick out one cell), as much of
// it as fits, up to its last space, else after its last hard break.
func wrapParagraph(p string, width int) []string {
	if p == "" {
		return []string{""}
	}
	var out []string
	for p != "" {
		line, _, _ := strings.Cut(ansi.Wordwrap(p, width, wordBreaks), "\n")
		if !strings.HasPrefix(p, line) || line == "" {
			line = p
		}
		if ansi.StringWidth(strings.TrimRight(line, " ")) > width {
			cut := ansi.Truncate(line, width, "")
			switch {
			case cut == "": // a character wider than the column
				_, n := utf8.DecodeRuneInString(line)
				cut = line[:n]
			case strings.LastIndexByte(cut, ' ') > 0:
				cut = cut[:strings.LastIndexByte(cut, ' ')]
			case strings.LastIndexAny(cut, hardBreaks+dateHyphen) > 0:
				i := strings.LastIndexAny(cut, hardBreaks+dateHyphen)
				_, n := utf8.DecodeRuneInString(cut[i:])
				cut = cut[:i+n]
			}
			line = cut
		}
		out = append(out, strings.TrimRight(line, " "))
		p = strings.TrimLeft(p[len(line):], " ")
	}
	return out
}

// ansi's word wrapping ends a line after any hyphen; the arrow of a port
// mapping (127.0.0.1:5435->5432) and a date must not be split there, so their
// hyphens become other hyphens while a cell is wrapped: an arrow's never
// ends a line, a date's only when the date has to break.
const (
	arrowHyphen = "\u2011" // non-breaking hyphen
	dateHyphen  = "\u2010" // hyphen
)

var (
	arrow = regexp.MustCompile(`->`)
	date  = regexp.MustCompile(`\d{4}-\d\d-\d\d`)
)

// glued applies wrap to s with the hyphens of its arrows and dates
// replaced, and puts them back.
func glued(s string, wrap func(string) string) string {
	if strings.ContainsAny(s, arrowHyphen+dateHyphen) { // the cell's own: leave it be
		return wrap(s)
	}
	for re, h := range map[*regexp.Regexp]string{arrow: arrowHyphen, date: dateHyphen} {
		s = re.ReplaceAllStringFunc(s, func(m string) string { return strings.ReplaceAll(m, "-", h) })
	}
	return strings.NewReplacer(arrowHyphen, "-", dateHyphen, "-").Replace(wrap(s))
}

// cutCell keeps each line of s to width cells, ending a cut line with "…".
func cutCell(s string, width int) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, width, "…")
	}
	return strings.Join(lines, "\n")
}

// terminalWidth is the width of the terminal on fd: its size when it is one,
// else $COLUMNS, else 80.
func terminalWidth(fd int) int {
	if w, _, err := term.GetSize(fd); err == nil && w > 0 {
		return w
	}
	if w, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && w > 0 {
		return w
	}
	return 80
}
