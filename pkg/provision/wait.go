package provision

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// pollInterval is how often readiness probes run.
const pollInterval = 200 * time.Millisecond

// probe reports whether a condition holds, and a short status for progress
// and for the error when time runs out.
type probe func(ctx context.Context) (done bool, status string)

// waitFor polls probe until it holds or the deadline passes. It fails fast when
// one of the watched containers stops running, with the container's last log lines.
func (p *Provisioner) waitFor(ctx context.Context, deadline time.Time, what string, watch []string, check probe) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	last := ""
	for {
		done, status := check(ctx)
		if done {
			return nil
		}
		if status != last && status != "" {
			p.Progress.Detail(status)
			last = status
		}
		for _, name := range watch {
			if err := p.failIfDead(ctx, name); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("timed out waiting for %s (last seen: %s); see `docker logs` of the containers named above, or raise --timeout", what, last)
			}
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// failIfDead returns an error with the container's last log lines when it has
// exited or was OOM-killed.
func (p *Provisioner) failIfDead(ctx context.Context, name string) error {
	info, err := p.Docker.ContainerInspect(ctx, name)
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	st := info.State
	if st == nil || st.Running || st.Paused || st.Restarting {
		return nil
	}
	why := fmt.Sprintf("exited with code %d", st.ExitCode)
	if st.OOMKilled {
		why = "was killed for lack of memory (OOM)"
	}
	return fmt.Errorf("container %s %s; its last log lines:\n%s", name, why, p.lastLogs(ctx, name, 20))
}

// lastLogs returns the last n lines a container wrote, indented.
func (p *Provisioner) lastLogs(ctx context.Context, name string, n int) string {
	text, err := LogTail(ctx, p.Docker, name, fmt.Sprint(n))
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

// LogTail returns the last lines a container wrote, stdout and stderr
// together; tail is a line count or "all".
func LogTail(ctx context.Context, docker *client.Client, name, tail string) (string, error) {
	rc, err := docker.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var out strings.Builder
	_, err = stdcopy.StdCopy(&out, &out, rc)
	return out.String(), err
}
