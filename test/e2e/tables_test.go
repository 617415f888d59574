package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"
)

// TestTables runs pgha's table commands in a real terminal, tmux, at 80 and
// at 120 columns, and reads the screen back: no line may be wider than the
// terminal, and every table's borders must line up. One cluster serves both
// widths. PGHA_E2E_SCREENS=<dir> keeps the screens there.
func TestTables(t *testing.T) {
	parallel(t)
	tm := newTmux(t)
	c := newCluster(t, 3, 3)
	name := []string{"--name", c.name}
	for _, width := range []int{80, 120} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			// At 80 up makes the cluster, at 120 it finds it up; both print
			// the summary table. The second backup is an incremental one,
			// whose label is the longest a backup has.
			backup := append([]string{"backup"}, name...)
			if width != 80 {
				backup = append(backup, "--type", "incr")
			}
			for _, args := range [][]string{
				c.upArgs(),
				append([]string{"status"}, name...),
				append([]string{"verify"}, name...),
				append([]string{"inspect", "cluster"}, name...),
				append([]string{"inspect", "etcd", "keys"}, name...),
				{"images", "list"},
				backup,
				append([]string{"backup", "list"}, name...),
			} {
				screen, code := tm.run(t, width, args...)
				cmd := "pgha " + strings.Join(args, " ")
				if dir := os.Getenv("PGHA_E2E_SCREENS"); dir != "" { // to look at them
					_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d-%s.txt", width, strings.Join(args[:min(3, len(args))], "-"))), []byte("$ "+cmd+"\n"+screen), 0o644)
				}
				if code != 0 {
					c.failures = append(c.failures, fmt.Sprintf("%s at %d columns: exit %d", cmd, width, code))
					t.Fatalf("%s at %d columns: exit %d; the screen:\n%s", cmd, width, code, screen)
				}
				if problems := checkScreen(screen, width); len(problems) > 0 {
					t.Errorf("%s at %d columns:\n  %s\nthe screen, wrapped lines joined:\n%s", cmd, width, strings.Join(problems, "\n  "), screen)
				}
			}
		})
	}
}

// checkScreen finds what is wrong with a screen (tmux's capture with wrapped
// lines joined): lines wider than the terminal, tables whose borders do not
// line up or that share their last line with the next output, no table at
// all, spinner frames left behind.
func checkScreen(screen string, width int) []string {
	var problems []string
	lines := strings.Split(screen, "\n")
	tables := 0
	var top []int // the border columns of the table being read
	for i, l := range lines {
		n := i + 1
		// The terminal wrapped what was wider than itself; -J joined it back.
		if w := runewidth.StringWidth(l); w > width {
			problems = append(problems, fmt.Sprintf("line %d is %d cells wide: %q", n, w, l))
		}
		if first, _ := utf8.DecodeRuneInString(l); strings.ContainsRune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏", first) {
			problems = append(problems, fmt.Sprintf("line %d is a spinner frame left behind: %q", n, l))
		}
		trimmed := strings.TrimRight(l, " ")
		var set, last string
		switch {
		case strings.HasPrefix(l, "┌"):
			if top != nil {
				problems = append(problems, fmt.Sprintf("line %d: a table starts inside another", n))
			}
			tables++
			top = borderColumns(l, "┌┬┐")
			set, last = "┌┬┐", "┐"
		case top == nil:
			continue
		case strings.HasPrefix(l, "├"):
			set, last = "├┼┤", "┤"
		case strings.HasPrefix(l, "└"):
			set, last = "└┴┘", "┘"
		case strings.HasPrefix(l, "│"):
			set, last = "│", "│"
		default:
			problems = append(problems, fmt.Sprintf("line %d breaks the table: %q", n, l))
			top = nil
			continue
		}
		if got := borderColumns(l, set); fmt.Sprint(got) != fmt.Sprint(top) {
			problems = append(problems, fmt.Sprintf("line %d has its borders at %v, the table's top at %v: %q", n, got, top, l))
		}
		if !strings.HasSuffix(trimmed, last) {
			problems = append(problems, fmt.Sprintf("line %d does not end with the table's border %s: %q", n, last, l))
		}
		if last == "┘" {
			top = nil
		}
	}
	if top != nil {
		problems = append(problems, "a table has no bottom border")
	}
	if tables == 0 {
		problems = append(problems, "no bordered table: stdout was not seen as a terminal")
	}
	return problems
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

// tmux is a private tmux server: its own socket, a long history, and panes
// that stay after their command exits so that they can be read.
type tmux struct {
	bin, socket, conf string
	dir               string // for the commands' exit status
	sessions          int
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	bin, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is required in CI: `make deps` installs it")
		}
		t.Skip("tmux is not installed (`make deps` installs it)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -s exit-empty off\nset -g remain-on-exit on\nset -g history-limit 100000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm := &tmux{bin: bin, socket: fmt.Sprintf("pgha-e2e-%d-%04x", os.Getpid(), rand.IntN(0x10000)), conf: conf, dir: dir}
	t.Cleanup(func() {
		_ = tm.command(context.Background(), "kill-server").Run()
		// tmux leaves its socket behind: /tmp/tmux-<uid>/<name> (-L).
		dir := os.Getenv("TMUX_TMPDIR")
		if dir == "" {
			dir = "/tmp"
		}
		_ = os.Remove(filepath.Join(dir, fmt.Sprintf("tmux-%d", os.Getuid()), tm.socket))
	})
	return tm
}

// command is a tmux command for the private server; -u: UTF-8 whatever the
// locale says.
func (tm *tmux) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, tm.bin, append([]string{"-u", "-L", tm.socket, "-f", tm.conf}, args...)...)
}

// run runs pgha with args in a new terminal width columns wide and returns
// the screen and its scrollback, wrapped lines joined, and pgha's exit code.
func (tm *tmux) run(t *testing.T, width int, args ...string) (string, int) {
	t.Helper()
	tm.sessions++
	session := fmt.Sprintf("pgha%d", tm.sessions)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Colour on (NO_COLOR empty), as a person's terminal has it: escape codes
	// must not count as width. tmux's own record of a dead pane's exit status
	// sometimes never comes for a quick command: a shell writes it to a file.
	status := filepath.Join(tm.dir, session+".status")
	start := append([]string{"new-session", "-d", "-s", session, "-x", fmt.Sprint(width), "-y", "50",
		"-e", "NO_COLOR=", "-e", "PGHA_STATE_DIR=" + stateDir, "-e", "PGHA_E2E_STATUS=" + status,
		"sh", "-c", `"$@"; echo $? >"$PGHA_E2E_STATUS"`, "sh", pghaBin}, args...)
	if out, err := tm.command(ctx, start...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	defer func() { _ = tm.command(context.Background(), "kill-session", "-t", session).Run() }()
	code := -1
	for ; ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		b, err := os.ReadFile(status)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			continue
		}
		out, err := tm.command(ctx, "display-message", "-p", "-t", session, "#{pane_dead}:#{window_width}").Output()
		if err != nil {
			t.Fatalf("tmux display-message: %v", err)
		}
		// Dead: the terminal has shown everything the command wrote.
		if f := strings.Split(strings.TrimSpace(string(out)), ":"); len(f) == 2 && f[0] == "1" {
			if f[1] != fmt.Sprint(width) {
				t.Fatalf("the terminal is %s columns wide, not %d", f[1], width)
			}
			if code, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				t.Fatalf("exit status %q: %v", b, err)
			}
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("pgha %s did not end within 8 minutes", strings.Join(args, " "))
	}
	// -J joins the lines the terminal wrapped: a line wider than the
	// terminal shows whole, as wide as it was written.
	out, err := tm.command(ctx, "capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", session).Output()
	if err != nil {
		t.Fatalf("tmux capture-pane: %v", err)
	}
	var kept []string
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "Pane is dead") {
			kept = append(kept, l)
		}
	}
	return strings.TrimRight(strings.Join(kept, "\n"), "\n ") + "\n", code
}
