package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// status renders long steps on stderr, kind style: on a terminal a spinner with
// the step's latest output line, replaced by "✓ summary"; elsewhere plain
// "• step" and "✓ summary" lines (and the output lines too with --verbose).
type status struct {
	mu                 sync.Mutex
	w                  io.Writer
	tty                bool
	verbose            bool
	title              string
	detail             string
	started            time.Time
	stop               chan struct{}
	done               chan struct{}
	ok, bad, warn, dim lipgloss.Style
}

func newStatus(w io.Writer, tty, color, verbose bool) *status {
	s := &status{w: w, tty: tty, verbose: verbose}
	if color {
		s.ok = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
		s.bad = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
		s.warn = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
		s.dim = lipgloss.NewStyle().Faint(true)
	}
	return s
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (s *status) Start(title string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.title, s.detail, s.started = title, "", time.Now()
	if !s.tty {
		fmt.Fprintf(s.w, "• %s\n", title)
		return
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.spin(s.stop, s.done)
}

func (s *status) spin(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		s.mu.Lock()
		line := fmt.Sprintf("%s %s", spinnerFrames[i%len(spinnerFrames)], s.title)
		if s.detail != "" {
			line += s.dim.Render("  " + s.detail)
		}
		// One row at most: "\r\033[K" erases only the row the cursor is on,
		// so a frame that wrapped would leave its first rows behind, and a
		// frame that fills the row leaves the cursor waiting to wrap.
		fmt.Fprintf(s.w, "\r\033[K%s", ansi.Truncate(line, min(160, s.width()-1), "…"))
		s.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// width is the width of the terminal the status line goes to.
func (s *status) width() int {
	if f, ok := s.w.(*os.File); ok {
		return terminalWidth(int(f.Fd()))
	}
	return terminalWidth(-1)
}

func (s *status) Detail(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detail = strings.TrimSpace(line)
	if !s.tty && s.verbose {
		fmt.Fprintf(s.w, "    %s\n", s.detail)
	}
}

func (s *status) End(ok bool, summary string) {
	s.stopSpinner()
	s.mu.Lock()
	defer s.mu.Unlock()
	if summary == "" {
		summary = s.title
	}
	if s.tty {
		fmt.Fprint(s.w, "\r\033[K")
	}
	if ok {
		fmt.Fprintf(s.w, "%s %s\n", s.ok.Render("✓"), s.fit(summary))
	} else {
		fmt.Fprintf(s.w, "%s %s\n", s.bad.Render("✗"), s.fit(summary))
	}
	s.title = ""
}

func (s *status) Warn(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearSpinner()
	fmt.Fprintf(s.w, "%s %s\n", s.warn.Render("!"), s.fit(msg))
}

// Info prints a plain line.
func (s *status) Info(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearSpinner()
	fmt.Fprintln(s.w, s.fit(msg))
}

// clearSpinner erases the spinner's row, if it runs, before a line is
// printed in the middle of a step: else the line would follow the frame on
// its row. The spinner draws again on the next row at its next tick.
func (s *status) clearSpinner() {
	if s.tty && s.stop != nil {
		fmt.Fprint(s.w, "\r\033[K")
	}
}

// fit wraps a line that would not fit the terminal at its words, the
// following rows indented under the text after a two-cell mark ("✓ ").
func (s *status) fit(msg string) string {
	if !s.tty {
		return msg
	}
	w := s.width() - 2
	if w < 20 || ansi.StringWidth(msg) <= w {
		return msg
	}
	return strings.ReplaceAll(wrapCell(msg, w), "\n", "\n  ")
}

func (s *status) stopSpinner() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop, s.done = nil, nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// Close ends a step left open by an error or an interrupt.
func (s *status) Close() {
	if s.title != "" {
		s.End(false, "")
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
