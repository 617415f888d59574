package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// runSwarm measures the cluster on a swarm of three test hosts (engines in
// containers on this machine): up, the kill of the primary's container (the
// guard of its host fences it), the loss of the primary's whole host (the
// lease decides; strict synchronous mode), and down -v, each round on a new
// cluster; the hosts are made once.
func runSwarm(rounds int, bin, out, syncMode string) error {
	prefix := fmt.Sprintf("bench-sw-%d", os.Getpid())
	name := fmt.Sprintf("bench-sw-%d", os.Getpid())
	offset := "4300"
	create, err := timeCmd(bin, "hosts", "create", "3", "--prefix", prefix, "--name", name, "--port-offset", offset)
	if err != nil {
		return err
	}
	defer timeCmd(bin, "hosts", "delete", "--prefix", prefix)
	fmt.Fprintf(os.Stderr, "hosts create 3 (images loaded): %.1fs\n", create)
	figs := map[string]*figure{}
	order := []string{}
	add := func(n string, v float64) {
		if figs[n] == nil {
			figs[n] = &figure{Name: n}
			order = append(order, n)
		}
		figs[n].Seconds = append(figs[n].Seconds, v)
	}
	for i := 0; i < rounds; i++ {
		up, err := timeCmd(bin, "up", "--swarm", "--hosts", prefix, "--name", name, "--port-offset", offset, "--sync", syncMode, "--timeout", "5m")
		if err != nil {
			timeCmd(bin, "down", "-v", "--name", name)
			return err
		}
		add("up --swarm (3 hosts, images present)", up)
		for _, fault := range []string{"kill", "host-down"} {
			rep, data, err := failoverRun(bin, "failover-test", "--name", name, "--fault", fault, "-o", "json", "--timeout", "150s")
			if err != nil {
				timeCmd(bin, "down", "-v", "--name", name)
				return fmt.Errorf("failover-test %s on the swarm: %v\n%s", fault, err, data)
			}
			add(fault+": new leader", rep.NewLeader)
			add(fault+": write gap", rep.Unavailable)
			add(fault+": rejoin", rep.Rejoin)
			add(fault+": acknowledged writes lost", float64(rep.Lost))
			if d := rep.Guard.Decision; d != nil && d.DecisionMs > 0 && fault == "kill" {
				add("kill: guard decision after the die event", d.DecisionMs/1000)
			}
			fmt.Fprintf(os.Stderr, "swarm round %d %s: leader %.2fs gap %.2fs rejoin %.2fs lost %d\n", i+1, fault, rep.NewLeader, rep.Unavailable, rep.Rejoin, rep.Lost)
		}
		down, err := timeCmd(bin, "down", "-v", "--name", name)
		if err != nil {
			return err
		}
		add("down -v", down)
		fmt.Fprintf(os.Stderr, "swarm round %d: up %.1fs, down -v %.1fs\n", i+1, up, down)
	}
	fmt.Printf("%-45s %8s %8s %8s\n", "swarm figure (seconds)", "min", "median", "max")
	var list []*figure
	for _, n := range order {
		f := figs[n]
		f.summarize()
		list = append(list, f)
		fmt.Printf("%-45s %8.2f %8.2f %8.2f\n", f.Name, f.Min, f.Median, f.Max)
	}
	if err := os.MkdirAll("bench/results", 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(map[string]any{"rounds": rounds, "at": time.Now().UTC(), "sync": syncMode, "hostsCreateSeconds": create, "swarm": list}, "", "  ")
	return os.WriteFile(strings.Replace(out, ".json", "-swarm.json", 1), data, 0o644)
}
