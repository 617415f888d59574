package provision

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
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

// Exec runs cmd in a running container and waits for it. onLine, when not
// nil, sees each line of stdout and stderr as it comes (progress).
func Exec(ctx context.Context, docker *client.Client, name string, onLine func(string), cmd ...string) (ExecResult, error) {
	var res ExecResult
	ex, err := docker.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return res, fmt.Errorf("running %s in %s: %w", cmd[0], name, err)
	}
	att, err := docker.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return res, fmt.Errorf("running %s in %s: %w", cmd[0], name, err)
	}
	defer att.Close()
	// The stream ends when the command does, or when ctx ends (Close unblocks it).
	stop := context.AfterFunc(ctx, func() { att.Close() })
	defer stop()
	var stdout, stderr bytes.Buffer
	outW, errW := io.Writer(&stdout), io.Writer(&stderr)
	if onLine != nil {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				onLine(sc.Text())
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
		return res, err
	}
	ins, err := docker.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return res, err
	}
	res.Stdout, res.Stderr, res.ExitCode = stdout.String(), stderr.String(), ins.ExitCode
	return res, nil
}
