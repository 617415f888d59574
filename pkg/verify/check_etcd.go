package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/secrets"
)

// checkEtcd: every member healthy, one leader, the member list matches the
// topology, a test key written and read back.
func checkEtcd(ctx context.Context, t Target, out *rows) {
	const g = "etcd"
	cli, err := t.Etcd()
	if err != nil {
		out.add(Check{Group: g, Name: "etcd client", Detail: err.Error()})
		return
	}
	defer cli.Close()

	// Each member at its own endpoint, in parallel.
	type result struct {
		leader, id uint64
		version    string
		err        error
		took       time.Duration
	}
	res := make([]result, len(t.Topo.Etcd))
	done := make(chan struct{})
	for i, e := range t.Topo.Etcd {
		go func() {
			defer func() { done <- struct{}{} }()
			start := time.Now()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			st, err := cli.Status(cctx, t.EtcdEndpoint(e))
			res[i].took = time.Since(start)
			if err != nil {
				res[i].err = t.why(ctx, e.Name, fmt.Errorf("%s unreachable at %s: %v", e.Name, t.Addr(e.ClientPort), clients.ShortErr(err)))
				return
			}
			res[i].leader, res[i].id, res[i].version = st.Leader, st.Header.MemberId, st.Version
			if len(st.Errors) > 0 {
				res[i].err = fmt.Errorf("%s reports: %s", e.Name, strings.Join(st.Errors, "; "))
			} else if st.Leader == 0 {
				res[i].err = fmt.Errorf("%s has no leader", e.Name)
			}
		}()
	}
	for range t.Topo.Etcd {
		<-done
	}
	leaders := map[uint64]bool{}
	idToName := map[uint64]string{}
	for i, e := range t.Topo.Etcd {
		c := Check{Group: g, Name: "member " + e.Name, OK: res[i].err == nil, Duration: res[i].took}
		if c.OK {
			c.Detail = "healthy, etcd " + res[i].version
			if res[i].leader == res[i].id {
				c.Detail += ", leader"
			}
			leaders[res[i].leader] = true
			idToName[res[i].id] = e.Name
		} else {
			c.Detail = res[i].err.Error()
		}
		out.add(c)
	}

	timed(out, g, "one leader", func() (string, error) {
		switch len(leaders) {
		case 0:
			return "", errors.New("no member reports a leader")
		case 1:
			for id := range leaders {
				if name := idToName[id]; name != "" {
					return "leader " + name, nil
				}
				return fmt.Sprintf("leader id %x", id), nil
			}
		}
		return "", fmt.Errorf("members disagree on the leader (%d leaders seen)", len(leaders))
	})

	timed(out, g, "member list", func() (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ml, err := cli.MemberList(cctx)
		if err != nil {
			return "", fmt.Errorf("member list: %v", clients.ShortErr(err))
		}
		var got, want []string
		for _, m := range ml.Members {
			got = append(got, m.Name)
		}
		for _, e := range t.Topo.Etcd {
			want = append(want, e.Name)
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			return "", fmt.Errorf("members %v, topology says %v", got, want)
		}
		return strings.Join(got, ", "), nil
	})

	timed(out, g, "write and read", func() (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		key, val := "/pgha/verify/"+secrets.Random(8), time.Now().UTC().Format(time.RFC3339Nano)
		if _, err := cli.Put(cctx, key, val); err != nil {
			return "", fmt.Errorf("writing %s: %v", key, clients.ShortErr(err))
		}
		defer func() {
			dctx, cancel := poll.Detached(ctx, 3*time.Second)
			defer cancel()
			_, _ = cli.Delete(dctx, key)
		}()
		got, err := cli.Get(cctx, key)
		if err != nil {
			return "", fmt.Errorf("reading %s: %v", key, clients.ShortErr(err))
		}
		if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != val {
			return "", fmt.Errorf("read back %d values for %s", len(got.Kvs), key)
		}
		return "test key written, read back and deleted", nil
	})
}
