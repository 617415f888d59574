package verify

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// NewEtcdClient connects to etcd through the given endpoints. It does not wait
// for a connection: calls fail with the context's deadline instead.
func NewEtcdClient(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// EtcdMemberStatus is the health of one member, asked at its own endpoint.
type EtcdMemberStatus struct {
	Endpoint string
	Leader   uint64
	IsLeader bool
	Err      error
}

// EtcdStatus asks every endpoint for its status.
func EtcdStatus(ctx context.Context, cli *clientv3.Client) []EtcdMemberStatus {
	var out []EtcdMemberStatus
	for _, ep := range cli.Endpoints() {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(cctx, ep)
		cancel()
		m := EtcdMemberStatus{Endpoint: ep, Err: err}
		if err == nil {
			m.Leader = st.Leader
			m.IsLeader = st.Leader == st.Header.MemberId
			if st.Leader == 0 {
				m.Err = fmt.Errorf("no leader")
			}
		}
		out = append(out, m)
	}
	return out
}
