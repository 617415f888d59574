package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/failover"
	"github.com/pgha/pgha/pkg/faults"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/hosts"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
)

type failoverFlags struct {
	name     string
	fault    string
	faults   string
	target   string
	to       string
	output   string
	report   string
	sync     string
	profile  string
	matrix   bool
	rounds   int
	pauseFor time.Duration
	timeout  time.Duration
}

func (a *app) newFailoverTestCommand() *cobra.Command {
	f := &failoverFlags{}
	cmd := &cobra.Command{
		Use:   "failover-test",
		Short: "Inject a fault and measure the failover under a real write workload",
		Long: `Verify the cluster, start a writer that inserts unique ids through a multi-host
connection (target_session_attrs=read-write) and a split-brain detector that probes every
node about every 100 ms (pg_is_in_recovery() and a write of its own), inject the fault,
and measure: the time until a new leader key appears in etcd, the client-observed write
unavailability (last acknowledged write before the fault to the first after), the new
primary and timeline. Then heal the fault and wait until every node streams from the
primary, check that every acknowledged id is on the primary and nothing else is, that
no two nodes took writes at the same moment, and verify the cluster.

Faults:
` + faults.Help() + `

--matrix runs every fault (or those of --faults) --rounds times on one cluster and sums
up each: median and max write gap, new-leader time, rejoin time, writes acknowledged,
lost and present though never sent, split-brain windows. --sync and --profile switch
the cluster's synchronous mode and timing through Patroni's dynamic configuration for
the run, and back. --report FILE.html writes a self-contained page with a timeline of
each run (every node's role over time, the leader key's holder, each write, the fault,
the heal and the write gap).

The fault is healed on every way out: an interrupted test (Ctrl-C, a timeout, an
error) starts, unpauses, reconnects or clears its target before pgha exits.
Exit 1 when no new primary appears where one must, the cluster is not whole again,
does not verify afterwards, two nodes took writes at once, or acknowledged writes are
lost in strict synchronous mode (in the other modes they are reported, with why).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.matrix {
				return a.runMatrix(cmd, f)
			}
			if cmd.Flags().Changed("faults") || cmd.Flags().Changed("rounds") {
				return usageError{fmt.Errorf("--faults and --rounds go with --matrix")}
			}
			fault, err := faults.Lookup(f.fault)
			if err != nil {
				return usageError{err}
			}
			if f.target != "" && !fault.Promises().On.OnPatroni() {
				return usageError{fmt.Errorf("--target: %s acts on %s, not on a node you choose", fault.Name(), fault.Promises().On)}
			}
			return a.runScenario(cmd, f, failover.Options{Fault: fault, Target: f.target})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.fault, "fault", faults.Stop{}.Name(), strings.Join(faults.Names(), ", "))
	cmd.Flags().StringVar(&f.target, "target", "", "the node to fault, for faults on a Patroni node: primary or a node name (default: the fault's own, the primary or a replica)")
	cmd.Flags().DurationVar(&f.pauseFor, "pause-for", 0, "how long a fault that holds lasts (default: the leader TTL + 10 s for pause, partition and dcs-partition, each other fault its own)")
	cmd.Flags().BoolVar(&f.matrix, "matrix", false, "run every fault --rounds times on this cluster and sum up each")
	cmd.Flags().IntVar(&f.rounds, "rounds", 1, "rounds of every fault, with --matrix")
	cmd.Flags().StringVar(&f.faults, "faults", "", "with --matrix: the faults to run, comma-separated (default: all)")
	cmd.Flags().StringVar(&f.sync, "sync", "", "synchronous mode for the run: off, on or strict (default: the cluster's); switched back afterwards")
	cmd.Flags().StringVar(&f.profile, "profile", "", "timing profile for the run: fast or seed (default: the cluster's); switched back afterwards")
	cmd.Flags().StringVar(&f.report, "report", "", "write an HTML report with a timeline of each run to this file")
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

// scenario is what a failover test or a matrix needs: the cluster, its checks
// and faults, and the options every run shares.
type scenario struct {
	b    *cluster.Docker
	topo topology.Cluster
	env  failover.Env
	opts failover.Options
}

// prepare validates the flags, finds the cluster, and wires its checks and faults.
func (a *app) prepare(ctx context.Context, cmd *cobra.Command, f *failoverFlags, fs []faults.Fault, st *status) (scenario, error) {
	var sc scenario
	if f.sync != "" && f.sync != topology.SyncOff && f.sync != topology.SyncOn && f.sync != topology.SyncStrict {
		return sc, usageError{fmt.Errorf("--sync %q: use off, on or strict", f.sync)}
	}
	if _, ok := topology.Profiles[f.profile]; f.profile != "" && !ok {
		return sc, usageError{fmt.Errorf("--profile %q: use fast or seed", f.profile)}
	}
	if f.report != "" && !strings.HasSuffix(strings.ToLower(f.report), ".html") {
		return sc, usageError{fmt.Errorf("--report %q: give a file name ending in .html", f.report)}
	}
	target, err := a.verifyTarget(ctx, f.name, 16<<20)
	if err != nil {
		return sc, err
	}
	b, _ := a.backendFor(ctx, f.name, nil)
	topo := target.Topo
	profile := topo.Profile
	if f.profile != "" {
		profile = f.profile
	}
	opts := failover.Options{PauseFor: f.pauseFor, Timeout: f.timeout, SynchronousMode: f.sync, Profile: f.profile}
	if !cmd.Flags().Changed("pause-for") {
		opts.PauseFor = time.Duration(topology.Profiles[profile].TTL+10) * time.Second
	} else {
		opts.Hold = f.pauseFor
	}
	ft := faults.Target{Backend: b, Topo: topo,
		Up: func(ctx context.Context) error {
			_, err := b.Up(ctx, topo, 3*time.Minute)
			return err
		},
		// A network fault whose pgha dies lifts itself after this.
		Deadline: opts.PauseFor + 3*f.timeout + 2*time.Minute,
	}
	if sw := b.Swarm(); sw != nil && sw.Outer != nil {
		// A swarm of test hosts: whole hosts can be killed and cut off.
		ctl := &hosts.Controller{Outer: sw.Outer.API, Prefix: sw.HostsPrefix, Deadline: ft.Deadline}
		for _, fl := range fs {
			if fl.Name() == (faults.HostPartition{}).Name() {
				if err := ctl.EnsureHelper(ctx, st); err != nil {
					return sc, err
				}
			}
		}
		ft.Hosts = ctl.Faults()
	}
	for _, fl := range fs {
		if fl.Promises().Helper {
			sup := &images.Supplier{Engine: b.Engine, Progress: st}
			im, err := sup.Netfault(ctx)
			if err != nil {
				return sc, err
			}
			ft.HelperImage = im.Ref
			break
		}
	}
	return scenario{b: b, topo: topo, env: failover.Env{Check: target, Faults: ft}, opts: opts}, nil
}

// runScenario runs a failover test or a switchover and reports it.
func (a *app) runScenario(cmd *cobra.Command, f *failoverFlags, opts failover.Options) error {
	ctx := cmd.Context()
	st := a.newStatus()
	defer st.Close()
	var fs []faults.Fault
	if opts.Fault != nil {
		fs = append(fs, opts.Fault)
	}
	sc, err := a.prepare(ctx, cmd, f, fs, st)
	if err != nil {
		return err
	}
	if opts.SwitchTo != "" {
		if _, ok := sc.topo.PatroniNode(opts.SwitchTo); !ok {
			return usageError{fmt.Errorf("--to %q is not a Patroni node of cluster %s", opts.SwitchTo, f.name)}
		}
	}
	sc.opts.Fault, sc.opts.Target, sc.opts.SwitchTo = opts.Fault, opts.Target, opts.SwitchTo
	guardBefore, err := guardReport(ctx, sc.b, sc.topo)
	if err != nil {
		return err
	}
	restore, err := a.switchDynamic(ctx, sc, st)
	if err != nil {
		return err
	}
	defer restore()
	what := sc.opts.Target
	if what == "" {
		what = string(sc.opts.Name())
		if sc.opts.Fault != nil {
			what = string(sc.opts.Fault.Promises().On)
		}
	}
	st.Start(fmt.Sprintf("%s on %s of cluster %s (profile %s, synchronous mode %s, guard %s)", sc.opts.Name(), what, f.name,
		orElse(f.profile, sc.topo.Profile), orElse(f.sync, sc.topo.SynchronousMode), guardBefore.State))
	began := time.Now()
	rep, last, err := failover.Run(ctx, sc.env, sc.opts)
	rep.Guard = guardBefore
	if sc.topo.Guard {
		gctx, cancel := poll.Detached(ctx, 5*time.Second)
		defer cancel()
		if after, gerr := sc.b.GuardStatus(gctx, sc.topo); gerr == nil {
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
	if f.report != "" {
		if err := writeReport(f.report, failover.HTMLReport{Title: fmt.Sprintf("pgha failover report: %s on %s, cluster %s", rep.Fault, orElse(rep.Target, rep.On), f.name), Runs: []failover.Report{rep}}); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "report written to %s\n", f.report)
	}
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

// switchDynamic switches synchronous mode and profile for the run; the
// returned function switches them back, also after an interrupt.
func (a *app) switchDynamic(ctx context.Context, sc scenario, st *status) (func(), error) {
	if sc.opts.SynchronousMode == "" && sc.opts.Profile == "" {
		return func() {}, nil
	}
	st.Start(fmt.Sprintf("Switching the cluster to synchronous mode %s, profile %s, for the run",
		orElse(sc.opts.SynchronousMode, sc.topo.SynchronousMode), orElse(sc.opts.Profile, sc.topo.Profile)))
	restore, err := failover.SetDynamic(ctx, sc.env.Check.Access, sc.opts.SynchronousMode, sc.opts.Profile)
	back := func() {
		rctx, cancel := poll.Detached(ctx, 30*time.Second)
		defer cancel()
		if rerr := restore(rctx); rerr != nil {
			fmt.Fprintf(a.stderr, "warning: %v\n", rerr)
		}
	}
	if err != nil {
		st.End(false, "")
		back()
		return nil, err
	}
	st.End(true, "Switched the dynamic configuration for the run")
	return back, nil
}

// runMatrix runs every fault --rounds times and sums up each.
func (a *app) runMatrix(cmd *cobra.Command, f *failoverFlags) error {
	ctx := cmd.Context()
	if cmd.Flags().Changed("fault") || f.target != "" {
		return usageError{fmt.Errorf("--matrix runs every fault on its own member: use --faults to choose, not --fault or --target")}
	}
	if f.rounds < 1 {
		return usageError{fmt.Errorf("--rounds %d: give at least 1", f.rounds)}
	}
	// Host faults need a cluster on test hosts: on one engine the matrix
	// leaves them out (the swarm wiring passes a Target with Hosts).
	fs := faults.For(faults.Target{})
	if f.faults != "" {
		fs = nil
		for _, n := range strings.Split(f.faults, ",") {
			fl, err := faults.Lookup(strings.TrimSpace(n))
			if err != nil {
				return usageError{err}
			}
			fs = append(fs, fl)
		}
	}
	st := a.newStatus()
	defer st.Close()
	sc, err := a.prepare(ctx, cmd, f, fs, st)
	if err != nil {
		return err
	}
	restore, err := a.switchDynamic(ctx, sc, st)
	if err != nil {
		return err
	}
	defer restore()
	runs, n := len(fs)*f.rounds, 0
	st.Start(fmt.Sprintf("matrix: %d faults × %d rounds on cluster %s (profile %s, synchronous mode %s)", len(fs), f.rounds, f.name,
		orElse(f.profile, sc.topo.Profile), orElse(f.sync, sc.topo.SynchronousMode)))
	mopts := failover.MatrixOptions{Faults: fs, Rounds: f.rounds, Run: sc.opts, Heal: sc.env.Faults.Up,
		OnRun: func(round int, r failover.Report, err error) {
			n++
			mark := "✓"
			if !r.OK {
				mark = "✗"
			}
			st.Info(fmt.Sprintf("%s %d/%d round %d %-14s on %-9s gap %6.2fs leader %6.2fs whole %6.2fs acked %5d lost %d split %d%s",
				mark, n, runs, round, r.Fault, orElse(r.Target, r.On), r.UnavailableSec, r.NewLeaderSec, r.RejoinSec, r.Audit.Acked, r.LostAcked, len(r.SplitBrains), failureWords(r)))
		}}
	rep, err := failover.Matrix(ctx, sc.env, mopts)
	st.End(rep.OK && err == nil, fmt.Sprintf("matrix: %d runs in %s", len(rep.Runs), time.Duration(rep.DurationSec*float64(time.Second)).Round(time.Second)))
	if f.report != "" && len(rep.Runs) > 0 {
		title := fmt.Sprintf("pgha failover matrix: cluster %s, %d round(s), synchronous mode %s", f.name, f.rounds, rep.SynchronousMode)
		if werr := writeReport(f.report, failover.HTMLReport{Title: title, Runs: rep.Runs, Matrix: &rep}); werr != nil {
			return werr
		}
		fmt.Fprintf(a.stderr, "report written to %s\n", f.report)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if f.output == "json" {
		if perr := printJSON(a.stdout, rep); perr != nil {
			return perr
		}
	} else {
		a.printMatrix(rep)
	}
	if err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("the matrix failed: %d lost acknowledged writes (synchronous mode %s), %d split brains, %d runs not healed; %d failures", rep.Lost, rep.SynchronousMode, rep.SplitBrains, rep.Unhealed, len(rep.Failures))
	}
	return nil
}

func failureWords(r failover.Report) string {
	if len(r.Failures) == 0 {
		return ""
	}
	return ": " + strings.Join(r.Failures, "; ")
}

func (a *app) printMatrix(rep failover.MatrixReport) {
	sec := func(med, mx float64) string { return fmt.Sprintf("%.2f / %.2f", med, mx) }
	var rows [][]string
	var notes []string
	for _, s := range rep.Summary {
		leader := "–"
		if s.NewLeaderRounds > 0 {
			leader = sec(s.NewLeaderMedian, s.NewLeaderMax)
		}
		gap := sec(s.GapMedian, s.GapMax)
		if s.RouterGapMax > 0 {
			gap += fmt.Sprintf(" (router %s)", sec(s.RouterGapMedian, s.RouterGapMax))
		}
		rows = append(rows, []string{s.Fault, s.On, fmt.Sprintf("%s (%d)", s.ExpectFailover, s.Failovers), fmt.Sprintf("%d/%d", s.Passed, s.Rounds),
			fmt.Sprintf("%d/%d", s.Healed, s.Rounds), gap, leader, sec(s.RejoinMedian, s.RejoinMax),
			fmt.Sprintf("%d / %d / %d", s.Acked, s.Lost, s.NeverSent), fmt.Sprint(s.SplitBrains)})
		if s.Note != "" {
			notes = append(notes, fmt.Sprintf("%s: %d acknowledged writes lost: %s", s.Fault, s.Lost, s.Note))
		}
	}
	a.printTable([]string{"FAULT", "ON", "FAILOVER (SEEN)", "PASSED", "HEALED", "WRITE GAP MED/MAX S", "NEW LEADER MED/MAX S", "WHOLE AGAIN MED/MAX S", "ACKED / LOST / NEVER SENT", "SPLIT BRAINS"}, rows, "FAILOVER (SEEN)", "WRITE GAP MED/MAX S", "NEW LEADER MED/MAX S", "WHOLE AGAIN MED/MAX S", "ACKED / LOST / NEVER SENT")
	for _, n := range notes {
		fmt.Fprintln(a.stdout, n)
	}
	for _, fl := range rep.Failures {
		fmt.Fprintln(a.stderr, "failed:", fl)
	}
}

// writeReport writes the HTML report atomically.
func writeReport(path string, r failover.HTMLReport) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pgha-report-*.html")
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := failover.WriteHTML(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func orElse(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func (a *app) printFailover(r failover.Report) {
	sec := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	target := r.Target
	if target == "" {
		target = r.On
	}
	rows := [][]string{
		{"fault", fmt.Sprintf("%s on %s", r.Fault, target)},
		{"old primary → new primary", fmt.Sprintf("%s → %s", r.OldPrimary, r.NewPrimary)},
		{"timeline", fmt.Sprintf("%d → %d", r.OldTimeline, r.NewTimeline)},
		{"new leader key in etcd after", leaderWords(r)},
		{"write unavailability", sec(r.UnavailableSec) + routerBeside(r)},
		{"rejoined as streaming replica after", sec(r.RejoinSec)},
		{"writes acked / failed / unknown", fmt.Sprintf("%d / %d / %d", r.Audit.Acked, r.Audit.Failed, r.Audit.Unknown)},
		{"acknowledged writes lost", fmt.Sprint(r.LostAcked)},
		{"ids never sent but present", fmt.Sprint(len(r.Audit.Phantom))},
		{"split-brain windows", fmt.Sprintf("%d (%d probes)", len(r.SplitBrains), r.Probes)},
		{"verified healthy afterwards", fmt.Sprint(r.VerifiedAfter)},
		{"profile / synchronous mode", r.Profile + " / " + r.SynchronousMode},
		{"guard", r.Guard.State},
	}
	if r.HoldSec > 0 {
		rows = append(rows[:4], append([][]string{{"held for", sec(r.HealSec)}}, rows[4:]...)...)
	}
	if r.InPlaceSec >= 0.3 {
		rows = append(rows[:1], append([][]string{{"fault in place after", sec(r.InPlaceSec)}}, rows[1:]...)...)
	}
	if d := r.Guard.Decision; d != nil {
		took := ""
		if d.DecisionMs > 0 {
			took = fmt.Sprintf(" (%.0f ms after the engine's event, %.0f ms of it the engine's confirmation)", d.DecisionMs, d.ConfirmMs)
		}
		rows = append(rows, []string{"guard decision", d.Summary() + took + ": " + d.Reason})
	}
	rows = append(rows, routerRows(r)...)
	if r.IsolatedStoppedWritesSec != 0 {
		rows = append(rows, []string{"isolated old primary stopped taking writes after", sec(r.IsolatedStoppedWritesSec)})
	}
	if a := r.Archive; a != nil {
		rows = append(rows, []string{"WAL archive after the heal", fmt.Sprintf("%d segments %s … %s, %d missing; at the heal %d closed segments were waiting (%d failed attempts); caught up %.2f s after the heal",
			a.Segments, a.From, a.To, len(a.Missing), a.WaitingAtHeal, a.FailedDuring, a.CaughtUpSec)})
	}
	if r.LostAcked > 0 && r.SynchronousMode != topology.SyncStrict {
		rows = append(rows, []string{"why writes were lost", failover.LostExplanation(r.SynchronousMode)})
	}
	for _, sb := range r.SplitBrains {
		rows = append(rows, []string{"split brain", sb.String()})
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

// leaderWords is the new leader's time, or why there is none.
func leaderWords(r failover.Report) string {
	if r.NewLeaderSec > 0 {
		return fmt.Sprintf("%.2f s", r.NewLeaderSec)
	}
	if r.OldPrimary == r.NewPrimary {
		return "– (" + r.OldPrimary + " kept the leader key)"
	}
	return "–"
}
