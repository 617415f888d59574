package failover

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/pgha/pgha/pkg/faults"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/pgha/pgha/pkg/verify"
)

// MatrixOptions tune a matrix run.
type MatrixOptions struct {
	Faults []faults.Fault
	Rounds int
	// Run is the template of every run (its Fault is set per run).
	Run Options
	// Heal brings the cluster back after a run that left it broken (pgha up).
	Heal func(ctx context.Context) error
	// OnRun sees every run as it ends.
	OnRun func(round int, rep Report, err error)
}

// FaultSummary is one fault's figures over its rounds.
type FaultSummary struct {
	Fault          string `json:"fault"`
	On             string `json:"on"`
	ExpectFailover string `json:"expectedFailover"`
	Rounds         int    `json:"rounds"`
	Passed         int    `json:"passed"`
	// Healed counts rounds after which the cluster was whole again.
	Healed    int     `json:"healed"`
	GapMedian float64 `json:"writeGapMedianSeconds"`
	GapMax    float64 `json:"writeGapMaxSeconds"`
	// The write gap through the router, when the cluster has one.
	RouterGapMedian float64 `json:"routerWriteGapMedianSeconds,omitempty"`
	RouterGapMax    float64 `json:"routerWriteGapMaxSeconds,omitempty"`
	NewLeaderMedian float64 `json:"newLeaderMedianSeconds"`
	NewLeaderMax    float64 `json:"newLeaderMaxSeconds"`
	// NewLeaderRounds counts the rounds with a new leader key.
	NewLeaderRounds int     `json:"newLeaderRounds"`
	RejoinMedian    float64 `json:"rejoinMedianSeconds"`
	RejoinMax       float64 `json:"rejoinMaxSeconds"`
	Acked           int     `json:"acked"`
	Failed          int     `json:"failed"`
	Unknown         int     `json:"unknown"`
	Lost            int     `json:"lost"`
	NeverSent       int     `json:"neverSentPresent"`
	SplitBrains     int     `json:"splitBrains"`
	Failovers       int     `json:"failovers"`
	// ArchiveMissing counts WAL segments missing from the repository after heals.
	ArchiveMissing int      `json:"archiveMissing,omitempty"`
	Failures       []string `json:"failures"`
	// Note explains lost writes that the synchronous mode allows.
	Note string `json:"note,omitempty"`
}

// MatrixReport is a whole matrix run.
type MatrixReport struct {
	Cluster         string         `json:"cluster"`
	Profile         string         `json:"profile"`
	SynchronousMode string         `json:"synchronousMode"`
	Rounds          int            `json:"rounds"`
	Summary         []FaultSummary `json:"summary"`
	Runs            []Report       `json:"runs"`
	Lost            int            `json:"lostAckedWrites"`
	SplitBrains     int            `json:"splitBrains"`
	// Unhealed counts runs after which the cluster was not whole again.
	Unhealed    int      `json:"unhealed"`
	DurationSec float64  `json:"durationSeconds"`
	Failures    []string `json:"failures"`
	OK          bool     `json:"ok"`
}

// Matrix runs every fault Rounds times on one cluster, round after round,
// each run verifying the cluster before and after, and sums up each fault.
// A run that fails to start (the cluster does not verify) is healed with
// Heal and verified again; a cluster that does not heal ends the matrix.
func Matrix(ctx context.Context, env Env, opts MatrixOptions) (MatrixReport, error) {
	start := time.Now()
	topo := env.Check.Topo
	rep := MatrixReport{Cluster: topo.Name, Profile: topo.Profile, SynchronousMode: topo.SynchronousMode, Rounds: opts.Rounds,
		Runs: []Report{}, Failures: []string{}}
	if opts.Run.Profile != "" {
		rep.Profile = opts.Run.Profile
	}
	if opts.Run.SynchronousMode != "" {
		rep.SynchronousMode = opts.Run.SynchronousMode
	}
	check := env.Check
	check.Topo.SynchronousMode = rep.SynchronousMode
	var err error
rounds:
	for round := 1; round <= opts.Rounds; round++ {
		for _, f := range opts.Faults {
			o := opts.Run
			o.Fault = f
			r, _, runErr := Run(ctx, env, o)
			if runErr != nil && ctx.Err() != nil {
				err = ctx.Err()
				break rounds
			}
			if runErr != nil {
				r.Failures = append(r.Failures, runErr.Error())
				r.OK = false
			}
			if opts.OnRun != nil {
				opts.OnRun(round, r, runErr)
			}
			rep.Runs = append(rep.Runs, r)
			if runErr == nil && r.Healed && r.VerifiedAfter {
				continue
			}
			// Bring the cluster back before the next run, as `pgha up` would.
			if opts.Heal != nil {
				if herr := opts.Heal(ctx); herr != nil && ctx.Err() == nil {
					rep.Failures = append(rep.Failures, fmt.Sprintf("round %d, %s: healing the cluster: %v", round, f.Name(), herr))
				}
			}
			if v := verify.RunUntil(ctx, check, 90*time.Second); !v.OK {
				if ctx.Err() != nil {
					err = ctx.Err()
					break rounds
				}
				rep.Failures = append(rep.Failures, fmt.Sprintf("round %d, %s: the cluster does not heal (does not verify healthy after pgha up)", round, f.Name()))
				err = errors.New("the cluster does not heal; the matrix stopped")
				break rounds
			}
		}
	}
	rep.Summary = Summarize(opts.Faults, rep.Runs, rep.SynchronousMode)
	for _, s := range rep.Summary {
		rep.Lost += s.Lost
		rep.SplitBrains += s.SplitBrains
		rep.Unhealed += s.Rounds - s.Healed
		for _, f := range s.Failures {
			rep.Failures = append(rep.Failures, s.Fault+": "+f)
		}
	}
	rep.DurationSec = time.Since(start).Seconds()
	rep.OK = err == nil && len(rep.Failures) == 0
	return rep, err
}

// Summarize sums up the runs of each fault, in the faults' order.
func Summarize(fs []faults.Fault, runs []Report, syncMode string) []FaultSummary {
	var out []FaultSummary
	for _, f := range fs {
		s := FaultSummary{Fault: f.Name(), On: string(f.Promises().On), ExpectFailover: string(f.Promises().Failover), Failures: []string{}}
		var gaps, routerGaps, leaders, rejoins []float64
		round := 0
		for _, r := range runs {
			if r.Fault != f.Name() {
				continue
			}
			round++
			s.Rounds++
			s.ExpectFailover = r.ExpectFailover
			if r.OK {
				s.Passed++
			}
			if r.Healed {
				s.Healed++
			}
			gaps = append(gaps, r.UnavailableSec)
			if r.Router != nil {
				routerGaps = append(routerGaps, r.Router.UnavailableSec)
			}
			if r.NewLeaderSec > 0 {
				leaders = append(leaders, r.NewLeaderSec)
				s.NewLeaderRounds++
			}
			if r.Healed {
				rejoins = append(rejoins, r.RejoinSec)
			}
			if r.NewPrimary != "" && r.OldPrimary != "" && r.NewPrimary != r.OldPrimary {
				s.Failovers++
			}
			s.Acked += r.Audit.Acked
			s.Failed += r.Audit.Failed
			s.Unknown += r.Audit.Unknown
			s.Lost += r.LostAcked
			s.NeverSent += len(r.Audit.Phantom)
			s.SplitBrains += len(r.SplitBrains)
			if r.Archive != nil {
				s.ArchiveMissing += len(r.Archive.Missing)
			}
			for _, fl := range r.Failures {
				s.Failures = append(s.Failures, fmt.Sprintf("round %d: %s", round, fl))
			}
		}
		s.GapMedian, s.GapMax = medianMax(gaps)
		s.RouterGapMedian, s.RouterGapMax = medianMax(routerGaps)
		s.NewLeaderMedian, s.NewLeaderMax = medianMax(leaders)
		s.RejoinMedian, s.RejoinMax = medianMax(rejoins)
		if s.Lost > 0 && syncMode != topology.SyncStrict {
			s.Note = LostExplanation(syncMode)
		}
		out = append(out, s)
	}
	return out
}

// LostExplanation says why acknowledged writes can be lost in a synchronous mode.
func LostExplanation(syncMode string) string {
	if syncMode == topology.SyncOn {
		return "synchronous mode on (not strict): with no synchronous standby reachable, Patroni lets the primary acknowledge commits alone; what it acknowledged then and no replica received is gone after the failover (pg_rewind discards it)"
	}
	return "asynchronous replication: the primary acknowledges a commit before any replica has it; an isolated or crashed primary's last acknowledged writes that no replica received are gone after the failover (pg_rewind discards them when it rejoins)"
}

func medianMax(v []float64) (median, maxV float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	median = s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return median, s[len(s)-1]
}
