package failover

import (
	"context"
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/topology"
)

// dynamicKeys are the keys of Patroni's dynamic configuration a run switches.
var dynamicKeys = []string{"synchronous_mode", "synchronous_mode_strict", "ttl", "loop_wait", "retry_timeout"}

// SetDynamic switches the cluster's synchronous mode and timing profile for
// a run through Patroni's dynamic configuration (PATCH /config), waits until
// the synchronous standby is there (or gone), and returns how to put back
// what was there before. Empty mode or profile leave them alone.
func SetDynamic(ctx context.Context, acc clients.Access, mode, profile string) (restore func(context.Context) error, err error) {
	nothing := func(context.Context) error { return nil }
	if mode == "" && profile == "" {
		return nothing, nil
	}
	primary, _ := acc.Primary(ctx)
	if primary == "" {
		return nothing, fmt.Errorf("no primary to change the dynamic configuration through")
	}
	old, err := acc.NodeDynamicConfig(ctx, primary)
	if err != nil {
		return nothing, fmt.Errorf("reading the dynamic configuration from %s: %w", primary, err)
	}
	patch := map[string]any{}
	if mode != "" {
		patch["synchronous_mode"] = mode != topology.SyncOff
		patch["synchronous_mode_strict"] = mode == topology.SyncStrict
	}
	if profile != "" {
		tm, ok := topology.Profiles[profile]
		if !ok {
			return nothing, fmt.Errorf("unknown profile %q", profile)
		}
		patch["ttl"], patch["loop_wait"], patch["retry_timeout"] = tm.TTL, tm.LoopWait, tm.RetryTimeout
	}
	back := map[string]any{}
	for _, k := range dynamicKeys {
		if _, changed := patch[k]; changed {
			back[k] = old[k] // nil (absent before) removes the key again
		}
	}
	restore = func(ctx context.Context) error {
		p, _ := acc.Primary(ctx)
		if p == "" {
			p = primary
		}
		if err := acc.PatchConfig(ctx, p, back); err != nil {
			return fmt.Errorf("putting the dynamic configuration back (%v): %w", back, err)
		}
		return nil
	}
	if err := acc.PatchConfig(ctx, primary, patch); err != nil {
		return nothing, fmt.Errorf("changing the dynamic configuration (%v): %w", patch, err)
	}
	if mode != "" {
		if err := waitSyncStandby(ctx, acc, mode != topology.SyncOff); err != nil {
			return restore, err
		}
	}
	return restore, nil
}

// waitSyncStandby waits until Patroni lists a streaming synchronous standby
// (want) or none.
func waitSyncStandby(ctx context.Context, acc clients.Access, want bool) error {
	err := poll.For(ctx, 60*time.Second, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		view, err := acc.Cluster(ctx)
		if err != nil {
			return false, nil
		}
		return (len(view.SyncStandbys()) > 0) == want, nil
	})
	if err != nil && ctx.Err() == nil {
		if want {
			return fmt.Errorf("no synchronous standby within 60 s of switching synchronous mode on")
		}
		return fmt.Errorf("a synchronous standby still listed 60 s after switching synchronous mode off")
	}
	return err
}
