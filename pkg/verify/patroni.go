// Package verify checks a running cluster through its loopback ports: etcd
// (clientv3), Patroni's REST API, PostgreSQL (pgx) and the object store (S3).
package verify

import (
	"context"
	"fmt"
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
