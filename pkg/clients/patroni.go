package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// PatroniState is what a node's GET /patroni says about itself.
type PatroniState struct {
	State            string `json:"state"`
	Role             string `json:"role"` // primary or replica (Patroni 4)
	Timeline         int    `json:"timeline"`
	ReplicationState string `json:"replication_state"` // streaming on a healthy replica
	Patroni          struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"patroni"`
	Xlog struct {
		ReceivedLocation int64 `json:"received_location"`
		ReplayedLocation int64 `json:"replayed_location"`
		Location         int64 `json:"location"`
	} `json:"xlog"`
}

// Patroni role words, as /patroni reports them.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

var httpClient = &http.Client{Timeout: 2 * time.Second}

// slowClient waits for actions that Patroni performs before answering, such
// as a switchover.
var slowClient = &http.Client{Timeout: 90 * time.Second}

// Streaming says whether a node is a replica that streams from the primary.
func (s PatroniState) Streaming() bool {
	return s.Role == RoleReplica && s.State == "running" && s.ReplicationState == "streaming"
}

// Leading says whether a node runs as the primary.
func (s PatroniState) Leading() bool { return s.Role == RolePrimary && s.State == "running" }

// Describe says in a few words how a node's REST API answered.
func Describe(st PatroniState, err error) string {
	if err != nil {
		return "REST API: " + err.Error()
	}
	return fmt.Sprintf("role %s, state %s, replication %q, timeline %d", st.Role, st.State, st.ReplicationState, st.Timeline)
}

// Patroni reads GET /patroni from a node's REST API.
func (a Access) Patroni(ctx context.Context, node string) (PatroniState, error) {
	var st PatroniState
	addr := a.RESTAddr(node)
	if addr == "" {
		return st, fmt.Errorf("%q is not a Patroni node of cluster %s", node, a.Topo.Name)
	}
	err := getJSON(ctx, "http://"+addr+"/patroni", &st)
	return st, err
}

// Primary asks every node and returns the running primary and its timeline
// ("" when none answers as the primary).
func (a Access) Primary(ctx context.Context) (string, int) {
	for _, n := range a.Topo.Patroni {
		if st, err := a.Patroni(ctx, n.Name); err == nil && st.Leading() {
			return n.Name, st.Timeline
		}
	}
	return "", 0
}

// RESTAuth is the basic-auth login for Patroni's unsafe endpoints.
type RESTAuth struct{ User, Password string }

// PatchConfig sends PATCH /config to a node. Patroni wakes its HA loop after
// any PATCH, even one that changes nothing, which makes a leader create the
// replication slots of newly registered replicas now instead of at its next
// loop.
func (a Access) PatchConfig(ctx context.Context, node string, patch map[string]any) error {
	return a.send(ctx, http.MethodPatch, node, "/config", patch)
}

// Switchover asks the leader's REST API for a planned switchover to
// candidate ("" lets Patroni choose).
func (a Access) Switchover(ctx context.Context, leader, candidate string) error {
	body := map[string]any{"leader": leader}
	if candidate != "" {
		body["candidate"] = candidate
	}
	return a.send(ctx, http.MethodPost, leader, "/switchover", body)
}

// send makes an authenticated request with a JSON body to a node's REST API.
func (a Access) send(ctx context.Context, method, node, path string, payload map[string]any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	url := "http://" + a.RESTAddr(node) + path
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	auth := a.Creds.REST()
	req.SetBasicAuth(auth.User, auth.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := slowClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
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
	// Pause is true in maintenance mode.
	Pause bool `json:"pause,omitempty"`
	// Source is the node whose REST API answered.
	Source string `json:"source"`
}

// SyncStandbys is the members Patroni names synchronous standbys that
// stream: in synchronous mode only they may take over, and in strict mode
// the primary takes no write without one.
func (v ClusterView) SyncStandbys() []string {
	var sync []string
	for _, m := range v.Members {
		if m.Role == "sync_standby" && m.State == "streaming" {
			sync = append(sync, m.Name)
		}
	}
	return sync
}

// Cluster asks the nodes, in topology order, for Patroni's /cluster view,
// and returns it with the leader first.
func (a Access) Cluster(ctx context.Context) (ClusterView, error) {
	var errs []string
	for _, n := range a.Topo.Patroni {
		var v ClusterView
		if err := getJSON(ctx, "http://"+a.Addr(n.RESTPort)+"/cluster", &v); err != nil {
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
