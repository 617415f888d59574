package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
)

// NodeInfo is the part of a node's GET /patroni that day-2 operations watch.
type NodeInfo struct {
	PatroniState
	// Pause is true while the cluster is in maintenance mode.
	Pause bool `json:"pause"`
	// PostmasterStart changes when PostgreSQL restarts (a restart, a reinit).
	PostmasterStart string `json:"postmaster_start_time"`
	PendingRestart  bool   `json:"pending_restart"`
}

// Node reads a node's GET /patroni with the maintenance and restart fields.
func (a Access) Node(ctx context.Context, node string) (NodeInfo, error) {
	var st NodeInfo
	addr := a.RESTAddr(node)
	if addr == "" {
		return st, fmt.Errorf("%q is not a Patroni node of cluster %s", node, a.Topo.Name)
	}
	err := getJSON(ctx, "http://"+addr+"/patroni", &st)
	return st, err
}

// HistoryEntry is one line of Patroni's /history: a timeline switch.
type HistoryEntry struct {
	Timeline  int    `json:"timeline"`
	LSN       int64  `json:"lsn"`
	Reason    string `json:"reason"`
	Timestamp string `json:"timestamp,omitempty"`
	NewLeader string `json:"newLeader,omitempty"`
}

// History reads Patroni's timeline history (GET /history) from the first
// node that answers. Patroni keeps it as [timeline, lsn, reason, timestamp,
// new leader] arrays; old entries lack the last two.
func (a Access) History(ctx context.Context) ([]HistoryEntry, error) {
	var errs []string
	for _, n := range a.Topo.Patroni {
		var raw [][]any
		if err := getJSON(ctx, "http://"+a.Addr(n.RESTPort)+"/history", &raw); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		out := make([]HistoryEntry, 0, len(raw))
		for _, r := range raw {
			var e HistoryEntry
			if len(r) > 0 {
				e.Timeline = int(num(r[0]))
			}
			if len(r) > 1 {
				e.LSN = int64(num(r[1]))
			}
			if len(r) > 2 {
				e.Reason, _ = r[2].(string)
			}
			if len(r) > 3 {
				e.Timestamp, _ = r[3].(string)
			}
			if len(r) > 4 {
				e.NewLeader, _ = r[4].(string)
			}
			out = append(out, e)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no Patroni node answers: %s", strings.Join(errs, "; "))
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// LSNString formats an LSN as PostgreSQL does (0/3000060).
func LSNString(lsn int64) string { return fmt.Sprintf("%X/%X", uint64(lsn)>>32, uint32(lsn)) }

// DynamicConfig reads Patroni's dynamic configuration (GET /config) from the
// first node that answers.
func (a Access) DynamicConfig(ctx context.Context) (map[string]any, error) {
	var errs []string
	for _, n := range a.Topo.Patroni {
		cfg, err := a.NodeDynamicConfig(ctx, n.Name)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("no Patroni node answers: %s", strings.Join(errs, "; "))
}

// NodeDynamicConfig reads Patroni's dynamic configuration from one node: the
// view of its last loop.
func (a Access) NodeDynamicConfig(ctx context.Context, node string) (map[string]any, error) {
	cfg := map[string]any{}
	if err := getJSON(ctx, "http://"+a.RESTAddr(node)+"/config", &cfg); err != nil {
		return nil, err
	}
	wholeNumbers(cfg)
	return cfg, nil
}

// Synchronous says whether a dynamic configuration asks for synchronous
// replication (synchronous_mode true, or Patroni 4's "quorum").
func Synchronous(cfg map[string]any) bool {
	switch v := cfg["synchronous_mode"].(type) {
	case bool:
		return v
	case string:
		return v != "" && v != "off" && v != "false"
	}
	return false
}

// wholeNumbers turns JSON's float64 whole numbers into ints, so that
// 1048576 does not print as 1.048576e+06.
func wholeNumbers(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				m[k] = int(x)
			}
		case map[string]any:
			wholeNumbers(x)
		}
	}
}

// PatchAny sends PATCH /config to the first node that takes it.
func (a Access) PatchAny(ctx context.Context, patch map[string]any) error {
	var errs []string
	for _, n := range a.Topo.Patroni {
		err := a.PatchConfig(ctx, n.Name, patch)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", n.Name, err))
	}
	return fmt.Errorf("no Patroni node took the configuration: %s", strings.Join(errs, "; "))
}

// Restart asks a node's Patroni to restart its PostgreSQL (POST /restart);
// Patroni answers once the restart is done.
func (a Access) Restart(ctx context.Context, node string) error {
	return a.send(ctx, http.MethodPost, node, "/restart", map[string]any{})
}

// Reinitialize asks a replica's Patroni to throw its data away and clone the
// primary again (POST /reinitialize); force stops a running PostgreSQL first.
func (a Access) Reinitialize(ctx context.Context, node string) error {
	return a.send(ctx, http.MethodPost, node, "/reinitialize", map[string]any{"force": true})
}

// RawREST reads one REST endpoint of a node as raw JSON (/patroni, /cluster,
// /history, /config).
func (a Access) RawREST(ctx context.Context, node, path string) (json.RawMessage, error) {
	addr := a.RESTAddr(node)
	if addr == "" {
		return nil, fmt.Errorf("%q is not a Patroni node of cluster %s", node, a.Topo.Name)
	}
	var raw json.RawMessage
	err := getJSON(ctx, "http://"+addr+path, &raw)
	return raw, err
}
