package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/poll"
)

// pollInterval is how often readiness probes run.
const pollInterval = 200 * time.Millisecond

// probe reports whether a condition holds, and a short status for progress
// and for the error when time runs out.
type probe func(ctx context.Context) (done bool, status string)

// waitFor polls check until it holds or the deadline passes. It fails fast
// when one of the watched containers stops running, with the container's
// last log lines (a testcontainers-style wait strategy).
func (d *Docker) waitFor(ctx context.Context, deadline time.Time, what string, watch []string, check probe) error {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	last := ""
	err := poll.Until(dctx, pollInterval, func(ctx context.Context) (bool, error) {
		done, status := check(ctx)
		if done {
			return true, nil
		}
		if status != last && status != "" {
			d.Progress.Detail(status)
			last = status
		}
		for _, name := range watch {
			if err := d.failIfDead(ctx, name); err != nil {
				return false, fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("timed out waiting for %s (last seen: %s); see `docker logs` of the containers named above, or raise --timeout", what, last)
	}
	return err
}

// failIfDead returns an error with the container's last log lines when it has
// exited or was OOM-killed.
func (d *Docker) failIfDead(ctx context.Context, name string) error {
	if d.swarm != nil {
		return d.swarm.failIfDead(ctx, name)
	}
	info, err := d.Engine.API.ContainerInspect(ctx, name)
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	why, dead := deathOf(info.State)
	if !dead {
		return nil
	}
	return fmt.Errorf("container %s %s; its last log lines:\n%s", name, why, d.Engine.LastLogs(ctx, name, 20))
}

// deathOf says whether a container's state is that of a container that has
// died, and how. One created but not started yet has not: etcd's members
// start in turn while the wait for a quorum already watches them (under
// load, the second member was once reported "exited with code 0").
func deathOf(st *container.State) (why string, dead bool) {
	if st == nil || st.Running || st.Paused || st.Restarting || st.Status == container.StateCreated {
		return "", false
	}
	if st.OOMKilled {
		return "was killed for lack of memory (OOM)", true
	}
	return fmt.Sprintf("exited with code %d", st.ExitCode), true
}
