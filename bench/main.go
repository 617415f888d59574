// Command bench measures pgha on this machine: median of N rounds per figure.
// It is not part of `make test`: run it with `make bench` (or go run ./bench).
//
//	go run ./bench -rounds 3            # warm up, down, verify, no-op image build
//	go run ./bench -rounds 3 -cold      # also a cold image build (removes pgha's images first)
//	go run ./bench -rounds 3 -only failover -faults stop,switchover,kill -profiles fast
//	go run ./bench -rounds 5 -matrix    # every fault of failover-test --matrix, strict synchronous mode
//	go run ./bench -rounds 3 -swarm     # on 3 test hosts: up --swarm, kill, host-down, down -v
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
)

type figure struct {
	Name    string    `json:"name"`
	Seconds []float64 `json:"seconds"`
	Min     float64   `json:"min"`
	Median  float64   `json:"median"`
	Max     float64   `json:"max"`
}

func (f *figure) summarize() {
	s := append([]float64(nil), f.Seconds...)
	sort.Float64s(s)
	f.Min, f.Max, f.Median = s[0], s[len(s)-1], s[len(s)/2]
	if len(s)%2 == 0 {
		f.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
}

func main() {
	rounds := flag.Int("rounds", 5, "rounds per figure")
	cold := flag.Bool("cold", false, "also measure a cold image build: removes every image pgha built first")
	only := flag.String("only", "", "run one part only: cluster (images, up, verify, down, baseline) or failover")
	faults := flag.String("faults", "stop,switchover,kill,kill-noguard", "failover faults to measure on the primary (also pause, partition: a minute a round); kill-noguard is kill with the guard stopped for the round; switchover is `pgha switchover`, measured the same way")
	profiles := flag.String("profiles", "fast,seed", "failover timing profiles")
	bin := flag.String("pgha", "bin/pgha", "the pgha binary")
	out := flag.String("json", "bench/results/latest.json", "where to write the figures as JSON")
	matrix := flag.Bool("matrix", false, "run pgha failover-test --matrix (every fault -rounds times on one cluster) instead, figures as JSON")
	syncMode := flag.String("sync", "strict", "the synchronous mode of the failover and matrix clusters (off, on, strict)")
	matrixFaults := flag.String("matrix-faults", "", "with -matrix: the faults, comma-separated (default: all)")
	swarm := flag.Bool("swarm", false, "measure on a swarm of 3 test hosts instead: up --swarm, kill, host-down, down -v")
	flag.Parse()
	if *swarm {
		if err := runSwarm(*rounds, *bin, *out, *syncMode); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *matrix {
		if err := runMatrix(*rounds, *bin, *out, *syncMode, *matrixFaults, strings.Split(*profiles, ",")[0]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *only != "" && *only != "cluster" && *only != "failover" {
		fmt.Fprintf(os.Stderr, "bench: -only %q: use cluster or failover\n", *only)
		os.Exit(2)
	}
	var err error
	if *only != "failover" {
		err = run(*rounds, *cold, *bin, *out)
	}
	if err == nil && *only != "cluster" {
		err = runFailover(*rounds, *bin, *out, *syncMode, strings.Split(*faults, ","), strings.Split(*profiles, ","))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// failoverReport is what the bench reads of failover-test -o json.
type failoverReport struct {
	NewLeader   float64 `json:"newLeaderSeconds"`
	Unavailable float64 `json:"writeUnavailableSeconds"`
	Rejoin      float64 `json:"rejoinSeconds"`
	Lost        int     `json:"lostAckedWrites"`
	Router      *struct {
		Unavailable float64 `json:"writeUnavailableSeconds"`
	} `json:"router"`
	Guard struct {
		Active   bool `json:"active"`
		Decision *struct {
			Outcome    string  `json:"outcome"`
			DecisionMs float64 `json:"decisionMs"`
		} `json:"decision"`
	} `json:"guard"`
}

// failoverRun runs failover-test (or switchover) with -o json and reads its report.
func failoverRun(bin string, args ...string) (failoverReport, []byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	data, err := cmd.Output()
	var rep failoverReport
	if jerr := json.Unmarshal(data, &rep); err == nil && jerr != nil {
		err = jerr
	}
	return rep, data, err
}

// timeCmd runs pgha and returns how long it took.
func timeCmd(bin string, args ...string) (float64, error) {
	start := time.Now()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	d := time.Since(start).Seconds()
	if err != nil {
		return d, fmt.Errorf("pgha %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return d, nil
}

func run(rounds int, cold bool, bin, out string) error {
	ctx := context.Background()
	eng, err := connect(ctx)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("bench-%d", os.Getpid())
	up := []string{"up", "--name", name, "--port-offset", "4000"}
	var figs []*figure
	add := func(n string) *figure { f := &figure{Name: n}; figs = append(figs, f); return f }

	if cold {
		f := add("cold image build (no pgha images, Go build cache warm)")
		for i := 0; i < rounds; i++ {
			if _, err := images.Remove(ctx, eng); err != nil {
				return err
			}
			d, err := timeCmd(bin, "images", "build")
			if err != nil {
				return err
			}
			f.Seconds = append(f.Seconds, d)
			fmt.Fprintf(os.Stderr, "cold build %d: %.1fs\n", i+1, d)
		}
	}
	noop := add("image build, nothing changed")
	upF, verifyF, downF := add("up until ready (images present, no volumes)"), add("verify on a healthy cluster"), add("down -v")
	baseF, ratioF := add("baseline: docker CLI by hand until ready"), add("ratio pgha up / baseline (same round)")
	imgs, err := (&images.Supplier{Engine: eng, Progress: progress.Discard{}}).Resolve(ctx)
	if err != nil {
		return err
	}
	baseTopo, err := topology.Generate("bench-base", 3, 3)
	if err != nil {
		return err
	}
	baseTopo.ShiftPorts(4200)
	for i := 0; i < rounds; i++ {
		d, err := timeCmd(bin, "images", "build")
		if err != nil {
			return err
		}
		noop.Seconds = append(noop.Seconds, d)
		if d, err = timeCmd(bin, up...); err != nil {
			timeCmd(bin, "down", "-v", "--name", name)
			return err
		}
		upF.Seconds = append(upF.Seconds, d)
		if d, err = timeCmd(bin, "verify", "--name", name); err != nil {
			timeCmd(bin, "down", "-v", "--name", name)
			return err
		}
		verifyF.Seconds = append(verifyF.Seconds, d)
		if d, err = timeCmd(bin, "down", "-v", "--name", name); err != nil {
			return err
		}
		downF.Seconds = append(downF.Seconds, d)
		b, err := timeBaseline(baseTopo, imgs.Etcd.Ref, imgs.Patroni.Ref)
		if err != nil {
			return err
		}
		baseF.Seconds = append(baseF.Seconds, b)
		ratioF.Seconds = append(ratioF.Seconds, upF.Seconds[i]/b)
		fmt.Fprintf(os.Stderr, "round %d: up %.1fs verify %.2fs down %.1fs baseline %.1fs\n", i+1, upF.Seconds[i], verifyF.Seconds[i], d, b)
	}
	fmt.Printf("%-55s %8s %8s %8s\n", "figure (seconds)", "min", "median", "max")
	for _, f := range figs {
		f.summarize()
		fmt.Printf("%-55s %8.2f %8.2f %8.2f\n", f.Name, f.Min, f.Median, f.Max)
	}
	if err := os.MkdirAll("bench/results", 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(map[string]any{"rounds": rounds, "at": time.Now().UTC(), "figures": figs}, "", "  ")
	return os.WriteFile(out, data, 0o644)
}

// runFailover measures every fault mode on the primary, per timing profile,
// in the synchronous mode asked (default strict): median of rounds. A fault "X-noguard" is X with
// the cluster's guard stopped for the round, so that the same cluster shows
// the fault with and without the guard.
func runFailover(rounds int, bin, out, syncMode string, faults, profiles []string) error {
	type row struct {
		Profile, Fault                       string
		NewLeader, Unavailable, Rejoin, Lost *figure
		// RouterUnavailable: the write gap of the writer through the
		// router's primary port, in the same rounds.
		RouterUnavailable *figure `json:",omitempty"`
		// GuardDecision: the guard's deletion of the leader key after the
		// engine's die event (seconds; only in rounds where it deleted).
		GuardDecision *figure `json:",omitempty"`
	}
	ctx := context.Background()
	eng, err := connect(ctx)
	if err != nil {
		return err
	}
	docker := cluster.NewDocker(eng, nil)
	var rowsOut []row
	for _, profile := range profiles {
		name := fmt.Sprintf("bench-fo-%s-%d", profile, os.Getpid())
		if _, err := timeCmd(bin, "up", "--name", name, "--port-offset", "4100", "--profile", profile, "--sync", syncMode); err != nil {
			return err
		}
		for _, fault := range faults {
			r := row{Profile: profile, Fault: fault, NewLeader: &figure{Name: "new leader"}, Unavailable: &figure{Name: "write unavailability"}, Rejoin: &figure{Name: "rejoin"}, Lost: &figure{Name: "lost acked writes"}}
			pghaFault, noGuard := strings.CutSuffix(fault, "-noguard")
			for i := 0; i < rounds; i++ {
				if noGuard {
					topo, err := docker.Find(ctx, name)
					if err != nil {
						return err
					}
					if err := eng.API.ContainerStop(ctx, topo.ContainerName(topology.GuardNode), container.StopOptions{}); err != nil {
						return fmt.Errorf("stopping the guard: %w", err)
					}
				}
				args := []string{"failover-test", "--name", name, "--fault", pghaFault, "-o", "json", "--timeout", "120s"}
				if fault == "switchover" {
					args = []string{"switchover", "--name", name, "-o", "json", "--timeout", "120s"}
				}
				rep, data, err := failoverRun(bin, args...)
				if err != nil {
					dumpLogs(ctx, docker, name)
					timeCmd(bin, "down", "-v", "--name", name)
					return fmt.Errorf("failover-test %s (%s): %v\n%s", fault, profile, err, data)
				}
				if rep.Guard.Active == noGuard {
					timeCmd(bin, "down", "-v", "--name", name)
					return fmt.Errorf("failover-test %s (%s): guard active %v", fault, profile, rep.Guard.Active)
				}
				if noGuard { // up starts the guard again and waits until it watches
					if _, err := timeCmd(bin, "up", "--name", name); err != nil {
						return err
					}
				}
				r.NewLeader.Seconds = append(r.NewLeader.Seconds, rep.NewLeader)
				r.Unavailable.Seconds = append(r.Unavailable.Seconds, rep.Unavailable)
				r.Rejoin.Seconds = append(r.Rejoin.Seconds, rep.Rejoin)
				r.Lost.Seconds = append(r.Lost.Seconds, float64(rep.Lost))
				if d := rep.Guard.Decision; d != nil && d.DecisionMs > 0 {
					if r.GuardDecision == nil {
						r.GuardDecision = &figure{Name: "guard decision after the die event"}
					}
					r.GuardDecision.Seconds = append(r.GuardDecision.Seconds, d.DecisionMs/1000)
				}
				routerGap := ""
				if rep.Router != nil {
					if r.RouterUnavailable == nil {
						r.RouterUnavailable = &figure{Name: "write unavailability through the router"}
					}
					r.RouterUnavailable.Seconds = append(r.RouterUnavailable.Seconds, rep.Router.Unavailable)
					routerGap = fmt.Sprintf(" (router %.2fs)", rep.Router.Unavailable)
				}
				fmt.Fprintf(os.Stderr, "%s %s %d: leader %.2fs gap %.2fs%s rejoin %.2fs lost %d\n", profile, fault, i+1, rep.NewLeader, rep.Unavailable, routerGap, rep.Rejoin, rep.Lost)
			}
			for _, f := range []*figure{r.NewLeader, r.Unavailable, r.Rejoin, r.Lost} {
				f.summarize()
			}
			if r.GuardDecision != nil {
				r.GuardDecision.summarize()
			}
			if r.RouterUnavailable != nil {
				r.RouterUnavailable.summarize()
			}
			rowsOut = append(rowsOut, r)
		}
		if _, err := timeCmd(bin, "down", "-v", "--name", name); err != nil {
			return err
		}
	}
	fmt.Printf("%-8s %-12s %22s %22s %22s %22s %10s %20s\n", "profile", "fault", "new leader s (median)", "write gap s (median)", "router gap s (median)", "rejoin s (median)", "lost (max)", "guard ms (median)")
	for _, r := range rowsOut {
		guardMs, routerGap := "-", "-"
		if r.GuardDecision != nil {
			guardMs = fmt.Sprintf("%.0f", r.GuardDecision.Median*1000)
		}
		if r.RouterUnavailable != nil {
			routerGap = fmt.Sprintf("%.2f", r.RouterUnavailable.Median)
		}
		fmt.Printf("%-8s %-12s %22.2f %22.2f %22s %22.2f %10.0f %20s\n", r.Profile, r.Fault, r.NewLeader.Median, r.Unavailable.Median, routerGap, r.Rejoin.Median, r.Lost.Max, guardMs)
	}
	if err := os.MkdirAll("bench/results", 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(map[string]any{"rounds": rounds, "at": time.Now().UTC(), "failover": rowsOut}, "", "  ")
	return os.WriteFile(strings.Replace(out, ".json", "-failover-"+syncMode+".json", 1), data, 0o644)
}

// dumpLogs prints the last log lines of a cluster's Patroni containers before a
// failed round's cluster is removed, so that the failure can be diagnosed.
func dumpLogs(ctx context.Context, docker *cluster.Docker, name string) {
	topo, err := docker.Find(ctx, name)
	if err != nil {
		return
	}
	for _, n := range topo.Patroni {
		text, err := docker.Engine.LogTail(ctx, topo.ContainerName(n.Name), "80")
		if err != nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "--- last log lines of %s\n%s", n.Name, text)
	}
}

// connect reaches the engine pgha itself would use.
func connect(ctx context.Context) (*engine.Engine, error) {
	ep, err := engine.Locate("")
	if err != nil {
		return nil, err
	}
	return engine.Connect(ctx, ep)
}

// runMatrix runs `pgha failover-test --matrix` on a cluster of its own and
// keeps its JSON: per fault, median and max write gap, new-leader and rejoin
// times, acknowledged, lost and never-sent writes, split-brain windows.
func runMatrix(rounds int, bin, out, syncMode, faults, profile string) error {
	name := fmt.Sprintf("bench-mx-%d", os.Getpid())
	if _, err := timeCmd(bin, "up", "--name", name, "--port-offset", "4300", "--profile", profile, "--sync", "strict"); err != nil {
		return err
	}
	defer timeCmd(bin, "down", "-v", "--name", name)
	args := []string{"failover-test", "--name", name, "--matrix", "--rounds", fmt.Sprint(rounds), "--sync", syncMode, "-o", "json", "--timeout", "120s",
		"--report", strings.Replace(out, ".json", "-matrix.html", 1)}
	if faults != "" {
		args = append(args, "--faults", faults)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.Stderr = os.Stderr // one progress line per run
	data, err := cmd.Output()
	var rep struct {
		OK      bool `json:"ok"`
		Summary []struct {
			Fault           string  `json:"fault"`
			Rounds          int     `json:"rounds"`
			Passed          int     `json:"passed"`
			GapMedian       float64 `json:"writeGapMedianSeconds"`
			GapMax          float64 `json:"writeGapMaxSeconds"`
			NewLeaderMedian float64 `json:"newLeaderMedianSeconds"`
			RejoinMedian    float64 `json:"rejoinMedianSeconds"`
			Acked           int     `json:"acked"`
			Lost            int     `json:"lost"`
			NeverSent       int     `json:"neverSentPresent"`
			SplitBrains     int     `json:"splitBrains"`
		} `json:"summary"`
	}
	if jerr := json.Unmarshal(data, &rep); jerr != nil {
		return fmt.Errorf("failover-test --matrix: %v %v\n%s", err, jerr, data)
	}
	fmt.Printf("%-14s %7s %18s %18s %14s %8s %6s %10s %6s\n", "fault", "passed", "gap median/max s", "new leader med s", "rejoin med s", "acked", "lost", "never sent", "split")
	for _, s := range rep.Summary {
		fmt.Printf("%-14s %4d/%-2d %8.2f / %7.2f %18.2f %14.2f %8d %6d %10d %6d\n", s.Fault, s.Passed, s.Rounds, s.GapMedian, s.GapMax, s.NewLeaderMedian, s.RejoinMedian, s.Acked, s.Lost, s.NeverSent, s.SplitBrains)
	}
	if err := os.MkdirAll("bench/results", 0o755); err != nil {
		return err
	}
	if werr := os.WriteFile(strings.Replace(out, ".json", "-matrix.json", 1), data, 0o644); werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("failover-test --matrix failed (figures kept): %v", err)
	}
	return nil
}
