package verify

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/poll"
)

// Check is one row of a verification: what was checked, whether it passed,
// the detail (or what is wrong and where), and how long it took.
type Check struct {
	Group      string        `json:"group"` // etcd, patroni, postgres, objectstore
	Name       string        `json:"name"`
	OK         bool          `json:"ok"`
	Detail     string        `json:"detail"`
	Duration   time.Duration `json:"-"`
	DurationMS float64       `json:"durationMs"`
}

// Report is a whole verification.
type Report struct {
	Cluster    string  `json:"cluster"`
	OK         bool    `json:"ok"`
	Checks     []Check `json:"checks"`
	DurationMS float64 `json:"durationMs"`
}

// Failed returns the failing checks.
func (r Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Target is the cluster to verify.
type Target struct {
	clients.Access
	// StoreKind names the object store's container (versitygw or minio).
	StoreKind string
	// MaxLag is the largest replication lag, in bytes, that passes.
	MaxLag int64
	// ContainerState, when set, returns the engine's word on a node's container
	// ("running", "exited (137)", "missing"), so that a failing row says why.
	ContainerState func(ctx context.Context, node string) string
}

// Run runs every check, the groups concurrently, and returns when all are done
// or ctx ends (a check then fails with what it was waiting for).
func Run(ctx context.Context, t Target) Report {
	start := time.Now()
	groups := []func(context.Context, Target, *rows){checkEtcd, checkPatroniAndPostgres, checkObjectStore, checkRouter}
	results := make([]rows, len(groups))
	var wg sync.WaitGroup
	for i, group := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			group(ctx, t, &results[i])
		}()
	}
	wg.Wait()
	r := Report{Cluster: t.Topo.Name, OK: true, Checks: []Check{}, DurationMS: ms(time.Since(start))}
	for i := range results {
		for _, c := range results[i].list {
			r.Checks = append(r.Checks, c)
			r.OK = r.OK && c.OK
		}
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rows collects the checks of one group, in order.
type rows struct {
	mu   sync.Mutex
	list []Check
}

func (r *rows) add(c Check) {
	c.DurationMS = ms(c.Duration)
	r.mu.Lock()
	r.list = append(r.list, c)
	r.mu.Unlock()
}

// timed runs fn and records its outcome as a check.
func timed(rec *rows, group, name string, fn func() (string, error)) bool {
	start := time.Now()
	detail, err := fn()
	c := Check{Group: group, Name: name, OK: err == nil, Detail: detail, Duration: time.Since(start)}
	if err != nil {
		c.Detail = err.Error()
	}
	rec.add(c)
	return c.OK
}

// RunUntil verifies the cluster, retrying until it passes or d has passed:
// right after a failover, replicas take a few loops to stream again.
func RunUntil(ctx context.Context, t Target, d time.Duration) Report {
	return runUntil(ctx, d, time.Second, func(ctx context.Context) Report { return Run(ctx, t) })
}

func runUntil(ctx context.Context, d, interval time.Duration, run func(context.Context) Report) Report {
	var seen poll.Seen[Report]
	_ = poll.For(ctx, d, interval, func(pctx context.Context) (bool, error) {
		vctx, cancel := context.WithTimeout(pctx, 10*time.Second)
		defer cancel()
		r := run(vctx)
		if r.OK {
			seen = poll.Seen[Report]{} // a pass counts, however late it came
		}
		seen.Note(pctx, r)
		return r.OK, nil
	})
	return seen.Last()
}

// why adds the engine's word on a node's container to an error.
func (t Target) why(ctx context.Context, node string, err error) error {
	if t.ContainerState == nil {
		return err
	}
	if st := t.ContainerState(ctx, node); st != string(container.StateRunning) {
		return fmt.Errorf("%w (container %s is %s)", err, t.Topo.ContainerName(node), st)
	}
	return err
}
