package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdKey is one key Patroni keeps in etcd, its value decoded.
type EtcdKey struct {
	Key         string          `json:"key"`
	Name        string          `json:"name"` // the key below the scope: leader, members/patroni1, ...
	Value       string          `json:"value"`
	JSON        json.RawMessage `json:"json,omitempty"` // the value, when it is JSON
	Lease       int64           `json:"lease,omitempty"`
	TTLSeconds  int64           `json:"ttlSeconds,omitempty"` // remaining lease time
	ModRevision int64           `json:"modRevision"`
}

// EtcdKeys reads every key under prefix, with the remaining TTL of leased keys.
func EtcdKeys(ctx context.Context, topo topology.Cluster, prefix string) ([]EtcdKey, error) {
	cli, err := NewEtcdClient(topo.EtcdEndpointsHost())
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cli.Get(cctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("reading %s from etcd (%s): %v", prefix, strings.Join(topo.EtcdEndpointsHost(), ", "), shortErr(err))
	}
	keys := make([]EtcdKey, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		k := EtcdKey{Key: string(kv.Key), Name: strings.TrimPrefix(string(kv.Key), topo.KeyPrefix()), Value: string(kv.Value), Lease: kv.Lease, ModRevision: kv.ModRevision}
		if json.Valid(kv.Value) && len(kv.Value) > 0 && (kv.Value[0] == '{' || kv.Value[0] == '[') {
			k.JSON = json.RawMessage(kv.Value)
		}
		if kv.Lease != 0 {
			if ttl, err := cli.TimeToLive(cctx, clientv3.LeaseID(kv.Lease)); err == nil {
				k.TTLSeconds = ttl.TTL
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Pretty returns the value for people: indented JSON, or the raw value.
func (k EtcdKey) Pretty() string {
	if k.JSON == nil {
		return k.Value
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, k.JSON, "", "  "); err != nil {
		return k.Value
	}
	return buf.String()
}

// Member is one row of Patroni's /cluster view, as patronictl list shows it.
type Member struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Role     string `json:"role"` // leader, replica, sync_standby, ...
	State    string `json:"state"`
	Timeline int    `json:"timeline"`
	// Lag is what Patroni says: bytes behind the leader, or "unknown"; absent on the leader.
	Lag    any     `json:"lag,omitempty"`
	LagMB  float64 `json:"lagMB"`
	APIURL string  `json:"api_url"`
}

// ClusterView is GET /cluster from the first node that answers.
type ClusterView struct {
	Scope   string   `json:"scope"`
	Members []Member `json:"members"`
	// Source is the node whose REST API answered.
	Source string `json:"source"`
}

// GetCluster asks the nodes, in topology order, for Patroni's /cluster view,
// and returns it with the leader first.
func GetCluster(ctx context.Context, topo topology.Cluster) (ClusterView, error) {
	var errs []string
	for _, n := range topo.Patroni {
		var v ClusterView
		if err := getJSON(ctx, fmt.Sprintf("http://127.0.0.1:%d/cluster", n.RESTPort), &v); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		}
		v.Source = n.Name
		for i := range v.Members {
			if b, ok := v.Members[i].Lag.(float64); ok {
				v.Members[i].LagMB = b / (1 << 20)
			}
		}
		sort.SliceStable(v.Members, func(i, j int) bool {
			li, lj := v.Members[i].Role == "leader", v.Members[j].Role == "leader"
			if li != lj {
				return li
			}
			return v.Members[i].Name < v.Members[j].Name
		})
		return v, nil
	}
	return ClusterView{}, fmt.Errorf("no Patroni node answers: %s", strings.Join(errs, "; "))
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
