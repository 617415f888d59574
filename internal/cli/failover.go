package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/failover"
	"github.com/pgha/pgha/pkg/faults"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
)

type failoverFlags struct {
	name     string
	fault    string
	target   string
	to       string
	output   string
	pauseFor time.Duration
	timeout  time.Duration
}

func (a *app) newFailoverTestCommand() *cobra.Command {
	f := &failoverFlags{}
	cmd := &cobra.Command{
		Use:   "failover-test",
		Short: "Inject a fault and measure the failover under a real write workload",
		Long: `Verify the cluster, start a writer that inserts unique ids through a multi-host
connection (target_session_attrs=read-write), inject the fault on the target, and measure:
the time until a new leader key appears in etcd, the client-observed write unavailability
(last acknowledged write before the fault to the first after), the new primary and timeline.
Then heal the target and wait until it streams from the new primary, check that every
acknowledged id is on the new primary and nothing else is, and verify the cluster.

Faults:
` + faults.Help() + `

The fault is healed on every way out: an interrupted test (Ctrl-C, a timeout, an
error) starts, unpauses or reconnects its target before pgha exits.
Exit 1 when no new primary appears, the old primary does not rejoin, the cluster does not
verify afterwards, or acknowledged writes are lost in strict synchronous mode.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fault, err := faults.Lookup(f.fault)
			if err != nil {
				return usageError{err}
			}
			return a.runScenario(cmd, f, failover.Options{Fault: fault, Target: f.target})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.fault, "fault", faults.Stop{}.Name(), strings.Join(faults.Names(), ", "))
	cmd.Flags().StringVar(&f.target, "target", "primary", "the node to fault: primary or a node name")
	cmd.Flags().DurationVar(&f.pauseFor, "pause-for", 0, "how long pause and partition last (default: the leader TTL + 10 s)")
	return cmd
}

func (a *app) newSwitchoverCommand() *cobra.Command {
	f := &failoverFlags{}
	cmd := &cobra.Command{
		Use:   "switchover",
		Short: "A planned switchover through Patroni's REST API, with the write unavailability measured",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runScenario(cmd, f, failover.Options{Target: "primary", SwitchTo: f.to})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.to, "to", "", "the node to promote (default: Patroni picks a healthy replica)")
	return cmd
}

func (f *failoverFlags) register(cmd *cobra.Command) {
	addNameFlag(cmd, &f.name)
	addOutputFlag(cmd, &f.output)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 90*time.Second, "limit of each wait: new primary, writes resuming, rejoin")
}

// runScenario runs a failover test or a switchover and reports it.
func (a *app) runScenario(cmd *cobra.Command, f *failoverFlags, opts failover.Options) error {
	ctx := cmd.Context()
	target, err := a.verifyTarget(ctx, f.name, 16<<20)
	if err != nil {
		return err
	}
	b, _ := a.backend(ctx, nil)
	topo := target.Topo
	if opts.SwitchTo != "" {
		if _, ok := topo.PatroniNode(opts.SwitchTo); !ok {
			return usageError{fmt.Errorf("--to %q is not a Patroni node of cluster %s", opts.SwitchTo, f.name)}
		}
	}
	opts.PauseFor = f.pauseFor
	if opts.PauseFor == 0 {
		opts.PauseFor = time.Duration(topo.Timing().TTL+10) * time.Second
	}
	opts.Timeout = f.timeout
	env := failover.Env{Check: target, Faults: faults.Target{Backend: b, Topo: topo}}
	guardBefore, err := guardReport(ctx, b, topo)
	if err != nil {
		return err
	}
	st := a.newStatus()
	defer st.Close()
	st.Start(fmt.Sprintf("%s on %s of cluster %s (profile %s, synchronous mode %s, guard %s)", opts.Name(), opts.Target, f.name, topo.Profile, topo.SynchronousMode, guardBefore.State))
	began := time.Now()
	rep, last, err := failover.Run(ctx, env, opts)
	rep.Guard = guardBefore
	if topo.Guard {
		gctx, cancel := poll.Detached(ctx, 5*time.Second)
		defer cancel()
		if after, gerr := b.GuardStatus(gctx, topo); gerr == nil {
			rep.Guard.Decision = guard.DecisionOn(after.Records, rep.Target, began)
		}
	}
	if err != nil {
		st.End(false, "")
		if len(last.Failed()) > 0 {
			a.printChecks(last)
		}
		return err
	}
	st.End(rep.OK, "")
	if f.output == "json" {
		if err := printJSON(a.stdout, rep); err != nil {
			return err
		}
	} else {
		a.printFailover(rep)
	}
	if !rep.OK {
		if !last.OK {
			a.printChecks(last)
		}
		return fmt.Errorf("%s test failed: %v", rep.Fault, rep.Failures)
	}
	return nil
}

func (a *app) printFailover(r failover.Report) {
	sec := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	rows := [][]string{
		{"fault", fmt.Sprintf("%s on %s", r.Fault, r.Target)},
		{"old primary → new primary", fmt.Sprintf("%s → %s", r.OldPrimary, r.NewPrimary)},
		{"timeline", fmt.Sprintf("%d → %d", r.OldTimeline, r.NewTimeline)},
		{"new leader key in etcd after", sec(r.NewLeaderSec)},
		{"write unavailability", sec(r.UnavailableSec)},
		{"rejoined as streaming replica after", sec(r.RejoinSec)},
		{"writes acked / failed / unknown", fmt.Sprintf("%d / %d / %d", r.Audit.Acked, r.Audit.Failed, r.Audit.Unknown)},
		{"acknowledged writes lost", fmt.Sprint(r.LostAcked)},
		{"ids never sent but present", fmt.Sprint(len(r.Audit.Phantom))},
		{"verified healthy afterwards", fmt.Sprint(r.VerifiedAfter)},
		{"profile / synchronous mode", r.Profile + " / " + r.SynchronousMode},
		{"guard", r.Guard.State},
	}
	if d := r.Guard.Decision; d != nil {
		took := ""
		if d.DecisionMs > 0 {
			took = fmt.Sprintf(" (%.0f ms after the engine's event, %.0f ms of it the engine's confirmation)", d.DecisionMs, d.ConfirmMs)
		}
		rows = append(rows, []string{"guard decision", d.Summary() + took + ": " + d.Reason})
	}
	if r.IsolatedStoppedWritesSec != 0 {
		rows = append(rows, []string{"isolated old primary stopped taking writes after", sec(r.IsolatedStoppedWritesSec)})
	}
	a.printTable([]string{"MEASURE", "VALUE"}, rows, "VALUE", "MEASURE")
}

// guardReport says whether the cluster's guard is on and watching now.
func guardReport(ctx context.Context, b *cluster.Docker, topo topology.Cluster) (failover.GuardReport, error) {
	if !topo.Guard {
		return failover.GuardReport{State: "off"}, nil
	}
	g, err := b.GuardStatus(ctx, topo)
	if err != nil {
		return failover.GuardReport{}, err
	}
	r := failover.GuardReport{Enabled: true, Active: g.Watching, State: "active"}
	if !g.Watching {
		r.State = "inactive (" + g.State + ")"
	}
	return r, nil
}
