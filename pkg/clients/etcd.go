package clients

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdLogin is how a client reaches the cluster's etcd: over TLS trusting the
// cluster's CA, as a user of its own.
type EtcdLogin struct {
	User, Password string
	CA             *x509.CertPool
}

// NewEtcd connects to etcd through the given endpoints. With a user it logs
// in at once, which needs a member that answers within the dial timeout (a
// cluster whose authentication is not enabled yet accepts the client too);
// without one it does not wait for a connection: calls fail with the
// context's deadline instead.
func NewEtcd(endpoints []string, login EtcdLogin) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
		Username:    login.User,
		Password:    login.Password,
	}
	if login.CA != nil {
		cfg.TLS = &tls.Config{RootCAs: login.CA, MinVersion: tls.VersionTLS12}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd (%s) as %s: %v", strings.Join(endpoints, ", "), login.User, ShortErr(err))
	}
	return cli, nil
}

// EtcdLogin is pgha's own login.
func (a Access) EtcdLogin() EtcdLogin {
	return EtcdLogin{User: a.Creds.EtcdUser, Password: a.Creds.EtcdPassword, CA: a.Creds.CA}
}

// Etcd connects to every member through its published port, as pgha's user.
func (a Access) Etcd() (*clientv3.Client, error) { return NewEtcd(a.EtcdEndpoints(), a.EtcdLogin()) }

// EtcdFromFiles connects as the user named in userFile ("user:password")
// trusting the CA in caFile: how the guard, inside its container, logs in.
func EtcdFromFiles(endpoints []string, caFile, userFile string) (*clientv3.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	cred, err := os.ReadFile(userFile)
	if err != nil {
		return nil, err
	}
	user, pw, ok := strings.Cut(strings.TrimSpace(string(cred)), ":")
	if !ok {
		return nil, fmt.Errorf("%s must hold user:password", userFile)
	}
	return NewEtcd(endpoints, EtcdLogin{User: user, Password: pw, CA: ca})
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

// KeyExists says whether an etcd key exists.
func KeyExists(ctx context.Context, etcd clientv3.KV, key string) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := etcd.Get(cctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("reading %s from etcd: %w", key, err)
	}
	return resp.Count > 0, nil
}

// KeyValue reads a key's value ("" when it does not exist).
func KeyValue(ctx context.Context, etcd clientv3.KV, key string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := etcd.Get(cctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return "", err
	}
	return string(resp.Kvs[0].Value), nil
}

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
func (a Access) EtcdKeys(ctx context.Context, prefix string) ([]EtcdKey, error) {
	cli, err := a.Etcd()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cli.Get(cctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("reading %s from etcd (%s): %v", prefix, strings.Join(a.EtcdEndpoints(), ", "), ShortErr(err))
	}
	keys := make([]EtcdKey, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		k := EtcdKey{Key: string(kv.Key), Name: strings.TrimPrefix(string(kv.Key), a.Topo.KeyPrefix()), Value: string(kv.Value), Lease: kv.Lease, ModRevision: kv.ModRevision}
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

// ShortErr trims gRPC's wrapping to the part a person needs.
func ShortErr(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "desc = "); i >= 0 {
		msg = msg[i+len("desc = "):]
	}
	return msg
}
