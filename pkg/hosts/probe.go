package hosts

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// ValidPrefix checks a prefix with the rule Create and Delete apply: 1 to 40
// lowercase letters, digits and dashes, starting with a letter or digit and
// not ending with a dash (it becomes part of container and directory names).
func ValidPrefix(prefix string) error {
	if !prefixRE.MatchString(prefix) || strings.HasSuffix(prefix, "-") {
		shown := prefix
		if len(shown) > 50 {
			shown = shown[:47] + "..."
		}
		return fmt.Errorf("test hosts prefix %q: use 1 to 40 lowercase letters, digits and dashes, starting with a letter or digit and not ending with a dash", shown)
	}
	return nil
}

// HostStatus is a host as the outer engine shows it and as its own engine
// and the swarm's managers report it.
type HostStatus struct {
	Host
	// Ready: the inner engine answers, its node is an active member of the
	// swarm and the managers see the node ready.
	Ready bool `json:"ready"`
	// EngineVersion is the inner engine's version, when it answers.
	EngineVersion string `json:"engineVersion,omitempty"`
	// Leader is true on the swarm's leading manager.
	Leader bool `json:"leader,omitempty"`
	// NodeState is the node's state as the managers see it (ready, down…).
	NodeState string `json:"nodeState,omitempty"`
	// Images is how many images the inner engine has.
	Images int `json:"images"`
	// Detail says why the host is not ready.
	Detail string `json:"detail,omitempty"`
}

// probeTimeout bounds what Probe asks of one engine: a stopped or hung
// engine must not hold up a listing.
const probeTimeout = 5 * time.Second

// Probe asks each host's engine about itself, at once, and one answering
// manager about the nodes. It never fails: what cannot be known is said in
// each host's Detail.
func Probe(ctx context.Context, sw Swarm) []HostStatus {
	out := make([]HostStatus, len(sw.Hosts))
	var wg sync.WaitGroup
	for i, h := range sw.Hosts {
		out[i] = HostStatus{Host: h}
		wg.Add(1)
		go func() {
			defer wg.Done()
			probeEngine(ctx, &out[i])
		}()
	}
	wg.Wait()

	// The swarm's view of the nodes, from the first manager that answers.
	var nodes []swarm.Node
	for _, s := range out {
		if s.SwarmRole != "manager" || s.Detail != "" {
			continue
		}
		cli, err := s.Client()
		if err != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		nodes, err = cli.NodeList(pctx, swarm.NodeListOptions{})
		cancel()
		cli.Close()
		if err == nil {
			break
		}
	}
	byName := map[string]swarm.Node{}
	for _, n := range nodes {
		byName[n.Description.Hostname] = n
	}
	for i := range out {
		s := &out[i]
		if s.Detail != "" {
			continue
		}
		n, ok := byName[s.Name]
		switch {
		case nodes == nil:
			s.Detail = "no manager answers about the swarm's nodes"
		case !ok:
			s.Detail = "not a node of the swarm"
		default:
			s.NodeState = string(n.Status.State)
			s.Leader = n.ManagerStatus != nil && n.ManagerStatus.Leader
			if n.Status.State != swarm.NodeStateReady {
				s.Detail = "the swarm sees the node " + string(n.Status.State)
			}
		}
		s.Ready = s.Detail == ""
	}
	return out
}

// probeEngine fills what the host's own engine says, or why it says nothing.
func probeEngine(ctx context.Context, s *HostStatus) {
	if s.State != "running" {
		s.Detail = "container " + s.State + " (pgha hosts create starts it)"
		return
	}
	if s.Socket == "" {
		s.Detail = "its container names no socket directory"
		return
	}
	cli, err := s.Client()
	if err != nil {
		s.Detail = err.Error()
		return
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	info, err := cli.Info(pctx)
	if err != nil {
		s.Detail = fmt.Sprintf("its engine does not answer on %s: %v", s.Socket, err)
		return
	}
	s.EngineVersion = info.ServerVersion
	s.Images = info.Images
	if st := info.Swarm.LocalNodeState; st != swarm.LocalNodeStateActive {
		s.Detail = "swarm membership " + string(st)
		if info.Swarm.Error != "" {
			s.Detail += ": " + info.Swarm.Error
		}
	}
}
