// Package verify checks a running cluster through its loopback ports: etcd
// (clientv3), Patroni's REST API, PostgreSQL (pgx) and the object store (S3).
package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// GetPatroni reads GET /patroni from a node's REST API on the host.
func GetPatroni(ctx context.Context, restPort int) (PatroniState, error) {
	var st PatroniState
	err := getJSON(ctx, fmt.Sprintf("http://127.0.0.1:%d/patroni", restPort), &st)
	return st, err
}

// Streaming says whether a node is a replica that streams from the primary.
func (s PatroniState) Streaming() bool {
	return s.Role == RoleReplica && s.State == "running" && s.ReplicationState == "streaming"
}

// Leading says whether a node runs as the primary.
func (s PatroniState) Leading() bool { return s.Role == RolePrimary && s.State == "running" }

// RESTAuth is the basic-auth login for Patroni's unsafe endpoints.
type RESTAuth struct{ User, Password string }

// PatchConfig sends PATCH /config to a node. Patroni wakes its HA loop after
// any PATCH, even one that changes nothing, which makes a leader create the
// replication slots of newly registered replicas now instead of at its next
// loop.
func PatchConfig(ctx context.Context, restPort int, auth RESTAuth, patch map[string]any) error {
	return send(ctx, http.MethodPatch, restPort, "/config", auth, patch)
}

func postJSON(ctx context.Context, restPort int, path string, auth RESTAuth, body map[string]any) error {
	return send(ctx, http.MethodPost, restPort, path, auth, body)
}

// send makes an authenticated request with a JSON body to a node's REST API.
func send(ctx context.Context, method string, restPort int, path string, auth RESTAuth, payload map[string]any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", restPort, path)
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
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
