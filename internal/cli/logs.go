package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/charmbracelet/lipgloss"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/pgha/pgha/pkg/ops"
	"github.com/spf13/cobra"
)

type logsFlags struct {
	name       string
	follow     bool
	since      string
	tail       string
	timestamps bool
}

func (a *app) newLogsCommand() *cobra.Command {
	f := &logsFlags{}
	cmd := &cobra.Command{
		Use:   "logs [NODE...]",
		Short: "Show the members' container logs, each line prefixed by its member (like docker compose logs)",
		Long: `Show the logs of the cluster's containers (etcd, Patroni, the object store, the guard),
or of the named members only, each line prefixed by its member as docker compose does.
-f follows them until Ctrl-C.`,
		Example: "  pgha logs patroni1 patroni2 --tail 20\n  pgha logs -f --since 5m",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.showLogs(cmd.Context(), f, args)
		},
	}
	addNameFlag(cmd, &f.name)
	cmd.Flags().BoolVarP(&f.follow, "follow", "f", false, "follow the logs until Ctrl-C")
	cmd.Flags().StringVar(&f.since, "since", "", "only lines since this duration ago (10m) or time (RFC 3339)")
	cmd.Flags().StringVarP(&f.tail, "tail", "n", "all", "number of lines to show from the end of each log")
	cmd.Flags().BoolVarP(&f.timestamps, "timestamps", "t", false, "show the engine's timestamps")
	return cmd
}

func (a *app) showLogs(ctx context.Context, f *logsFlags, args []string) error {
	if f.tail != "all" {
		var n int
		if _, err := fmt.Sscan(f.tail, &n); err != nil || n < 0 {
			return usageError{fmt.Errorf("--tail %q: give a number of lines or all", f.tail)}
		}
	}
	b, topo, err := a.cluster(ctx, f.name, nil)
	if err != nil {
		return err
	}
	kind, err := b.StoreKind(ctx, topo)
	if err != nil {
		return err
	}
	members := ops.MemberNames(topo, kind)
	if len(args) > 0 {
		members = members[:0:0]
		for _, arg := range args {
			m, err := ops.Member(topo, kind, arg)
			if err != nil {
				return err
			}
			members = append(members, m)
		}
	}
	width := 0
	for _, m := range members {
		width = max(width, len(m))
	}
	out := &lineWriter{w: a.stdout}
	palette := []string{"6", "3", "2", "5", "4", "14", "11", "10", "13", "12"}
	stream := func(ctx context.Context, i int, m string) error {
		prefix := fmt.Sprintf("%-*s | ", width, m)
		if a.stdoutTTY && a.color {
			prefix = lipgloss.NewStyle().Foreground(lipgloss.Color(palette[i%len(palette)])).Render(prefix)
		}
		eng, name := b.Where(topo, m)
		rc, err := eng.API.ContainerLogs(ctx, name, container.LogsOptions{
			ShowStdout: true, ShowStderr: true, Follow: f.follow, Since: f.since, Tail: f.tail, Timestamps: f.timestamps})
		if err != nil {
			return fmt.Errorf("logs of %s: %w", name, err)
		}
		defer rc.Close()
		pw := out.prefixed(prefix)
		_, err = stdcopy.StdCopy(pw, pw, rc)
		pw.flush()
		if ctx.Err() != nil {
			return nil // Ctrl-C ends following
		}
		return err
	}
	if !f.follow {
		// One member after the other: each member's lines stay together.
		for i, m := range members {
			if err := stream(ctx, i, m); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(members))
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = stream(ctx, i, m)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// lineWriter writes whole lines from several streams without mixing them.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) prefixed(prefix string) *prefixWriter {
	return &prefixWriter{out: l, prefix: prefix}
}

// prefixWriter buffers a stream until each newline and writes every line
// with its member's prefix.
type prefixWriter struct {
	out    *lineWriter
	prefix string
	buf    bytes.Buffer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf.Write(b)
	for {
		i := bytes.IndexByte(p.buf.Bytes(), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(p.buf.Next(i + 1))
		p.out.mu.Lock()
		_, err := io.WriteString(p.out.w, p.prefix+line)
		p.out.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
}

// flush writes a last line that had no newline.
func (p *prefixWriter) flush() {
	if p.buf.Len() == 0 {
		return
	}
	sc := bufio.NewScanner(&p.buf)
	for sc.Scan() {
		p.out.mu.Lock()
		io.WriteString(p.out.w, p.prefix+strings.TrimRight(sc.Text(), "\r")+"\n")
		p.out.mu.Unlock()
	}
}
