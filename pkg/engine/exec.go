package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ExecResult is what a command run in a container printed, and its exit code.
type ExecResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// Err is nil for a zero exit code, else an error carrying the command's last
// words on stderr (or stdout when stderr is empty).
func (r ExecResult) Err(what string) error {
	if r.ExitCode == 0 {
		return nil
	}
	msg := strings.TrimSpace(r.Stderr)
	if msg == "" {
		msg = strings.TrimSpace(r.Stdout)
	}
	if lines := strings.Split(msg, "\n"); len(lines) > 8 {
		msg = strings.Join(lines[len(lines)-8:], "\n")
	}
	return fmt.Errorf("%s exited %d: %s", what, r.ExitCode, msg)
}

// ExecOptions tune Exec.
type ExecOptions struct {
	// User runs the command as this user ("" for the container's own).
	User string
	// OnLine, when set, sees each line of stdout and stderr as it comes.
	OnLine func(string)
}

// Exec runs cmd in a running container and waits for it; when ctx ends the
// stream is closed and ctx's error returned.
func (e *Engine) Exec(ctx context.Context, name string, opts ExecOptions, cmd ...string) (ExecResult, error) {
	var res ExecResult
	ex, err := e.API.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd, User: opts.User, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return res, fmt.Errorf("running %s in %s: %w", cmd[0], name, err)
	}
	att, err := e.API.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return res, fmt.Errorf("running %s in %s: %w", cmd[0], name, err)
	}
	defer att.Close()
	// The stream ends when the command does, or when ctx ends (Close unblocks it).
	stop := context.AfterFunc(ctx, func() { att.Close() })
	defer stop()
	var stdout, stderr bytes.Buffer
	outW, errW := io.Writer(&stdout), io.Writer(&stderr)
	if opts.OnLine != nil {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				opts.OnLine(sc.Text())
			}
			_, _ = io.Copy(io.Discard, pr)
		}()
		defer func() { pw.Close(); <-done }()
		outW, errW = io.MultiWriter(&stdout, pw), io.MultiWriter(&stderr, pw)
	}
	if _, err := stdcopy.StdCopy(outW, errW, att.Reader); err != nil && ctx.Err() == nil {
		return res, fmt.Errorf("reading the output of %s in %s: %w", cmd[0], name, err)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("running %s in %s: %w", cmd[0], name, err)
	}
	ins, err := e.API.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return res, fmt.Errorf("reading the exit code of %s in %s: %w", cmd[0], name, err)
	}
	res.Stdout, res.Stderr, res.ExitCode = stdout.String(), stderr.String(), ins.ExitCode
	return res, nil
}

// Output runs a command with a deadline and returns stdout and stderr
// together; a non-zero exit is an error.
func (e *Engine) Output(ctx context.Context, name string, opts ExecOptions, cmd ...string) (string, error) {
	res, err := e.Exec(ctx, name, opts, cmd...)
	if err != nil {
		return "", err
	}
	return res.Stdout + res.Stderr, res.Err(cmd[0] + " in " + name)
}

// LogTail returns the last lines a container wrote, stdout and stderr
// together; tail is a line count or "all".
func (e *Engine) LogTail(ctx context.Context, name, tail string) (string, error) {
	rc, err := e.API.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var out strings.Builder
	_, err = stdcopy.StdCopy(&out, &out, rc)
	return out.String(), err
}

// LastLogs returns the last n lines a container wrote, indented, for error
// messages.
func (e *Engine) LastLogs(ctx context.Context, name string, n int) string {
	text, err := e.LogTail(ctx, name, fmt.Sprint(n))
	if err != nil {
		return "    (logs unavailable: " + err.Error() + ")"
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		lines = append(lines, "    "+sc.Text())
	}
	return strings.Join(lines, "\n")
}

// CopyFiles copies files into a container (created or running) at their
// absolute paths.
func (e *Engine) CopyFiles(ctx context.Context, name string, files []File) error {
	return e.CopyFilesTo(ctx, name, "/", files)
}

// CopyFilesTo copies files into a container under dir, their names relative
// to it. A container with a read-only root filesystem takes files only into
// a directory that is a writable mount: then dir must be that mount.
func (e *Engine) CopyFilesTo(ctx context.Context, name, dir string, files []File) error {
	archive, err := Tar(files)
	if err != nil {
		return fmt.Errorf("preparing files for %s: %w", name, err)
	}
	if err := e.API.CopyToContainer(ctx, name, dir, archive, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("copying files into %s: %w", name, err)
	}
	return nil
}

// WaitForLog follows a container's output, from its start, until a line
// contains text; it returns the context's error when that comes first.
func (e *Engine) WaitForLog(ctx context.Context, name, text string) error {
	rc, err := e.API.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return err
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() { _, err := stdcopy.StdCopy(pw, pw, rc); pw.CloseWithError(err) }()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if strings.Contains(sc.Text(), text) {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if sc.Err() != nil {
		return sc.Err()
	}
	return fmt.Errorf("%s ended its output without %q", name, text)
}
