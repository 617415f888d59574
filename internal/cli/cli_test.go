package cli

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
)

func newTestApp() (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &app{stdout: &out, stderr: &errb}, &out, &errb
}

func TestPlainTableIsTabSeparated(t *testing.T) {
	a, out, _ := newTestApp()
	a.printTable([]string{"A", "B"}, [][]string{{"1", "two words"}, {"3", ""}})
	if got, want := out.String(), "A\tB\n1\ttwo words\n3\t\n"; got != want {
		t.Errorf("table = %q, want %q", got, want)
	}
}

func TestShellQuoteSurvivesTheShell(t *testing.T) {
	for _, v := range []string{"plain", "it's", `a"b$c\d`, "sp ace;rm -rf"} {
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(v)).Output()
		if err != nil || string(out) != v {
			t.Errorf("%q came back as %q (%v)", v, out, err)
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"status", "--bogus"}, {"status", "-o", "yaml"}, {"no-such-command"},
		{"backup", "--type", "differential"}, {"restore", "--latest", "--to-lsn", "0/1", "--yes"}, {"restore", "--yes"},
		{"restore", "--to-time", "yesterday", "--yes"}, {"restore", "--to-lsn", "5002118", "--yes"}, {"restore", "--latest"}} {
		a, _, errb := newTestApp()
		code := a.run(context.Background(), args)
		if code != exitUsage && !(args[0] == "no-such-command" && code == exitError) {
			t.Errorf("%v: exit %d, stderr %s", args, code, errb)
		}
		if !strings.Contains(errb.String(), "error:") {
			t.Errorf("%v: no error message: %q", args, errb)
		}
	}
}

func TestVersion(t *testing.T) {
	a, out, _ := newTestApp()
	if code := a.run(context.Background(), []string{"version"}); code != 0 || out.String() != "pgha dev\n" {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
