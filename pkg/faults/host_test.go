package faults

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pgha/pgha/pkg/topology"
)

// On one engine there are no hosts to kill or cut: both host faults say so
// and what to do instead, and leave nothing to heal.
func TestHostFaultsNeedTestHosts(t *testing.T) {
	for _, f := range []Fault{HostDown{}, HostPartition{}} {
		t.Run(f.Name(), func(t *testing.T) {
			tg, _, b := target(t)
			_, err := Inject(context.Background(), f, tg, "patroni1")
			if err == nil {
				t.Fatal("injected without hosts")
			}
			want := f.Name() + " needs a cluster on test hosts made by `pgha hosts create` (on real hosts, stop the machine yourself)"
			if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "healing") {
				t.Errorf("error = %v\nwant it to say %q and nothing about a heal", err, want)
			}
			if len(b.calls) != 0 {
				t.Errorf("backend called: %v", b.calls)
			}
		})
	}
}

// hostsRec records what the host faults asked of the hosts.
type hostsRec struct {
	calls []string
	where map[string]string
	fail  error
}

func (h *hostsRec) HostOf(_ context.Context, topo topology.Cluster, node string) (string, error) {
	if hst, ok := h.where[node]; ok {
		return hst, nil
	}
	return "", errors.New("no running task of " + topo.ContainerName(node))
}
func (h *hostsRec) Kill(_ context.Context, host string) error {
	h.calls = append(h.calls, "kill "+host)
	return h.fail
}
func (h *hostsRec) Start(ctx context.Context, host string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	h.calls = append(h.calls, "start "+host)
	return nil
}
func (h *hostsRec) Cut(_ context.Context, host string) error {
	h.calls = append(h.calls, "cut "+host)
	return h.fail
}
func (h *hostsRec) Join(ctx context.Context, host string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	h.calls = append(h.calls, "join "+host)
	return nil
}

// Each host fault acts on the host that runs the member, and its heal acts
// on that same host even after a cancel; a failed injection is healed.
func TestHostFaultsActOnTheMembersHost(t *testing.T) {
	for _, tc := range []struct {
		f    Fault
		fail error
		want string
	}{
		{HostDown{}, nil, "kill h2,start h2"},
		{HostPartition{}, nil, "cut h2,join h2"},
		{HostPartition{}, errors.New("iptables refused"), "cut h2,join h2"},
	} {
		t.Run(tc.f.Name(), func(t *testing.T) {
			tg, _, _ := target(t)
			rec := &hostsRec{where: map[string]string{"patroni2": "h2"}, fail: tc.fail}
			tg.Hosts = rec
			ctx, cancel := context.WithCancel(context.Background())
			in, err := Inject(ctx, tc.f, tg, "patroni2")
			cancel()
			if tc.fail != nil {
				if err == nil || !strings.Contains(err.Error(), "iptables refused") {
					t.Fatalf("inject error = %v", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if err := in.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if got := strings.Join(rec.calls, ","); got != tc.want {
				t.Errorf("calls = %s, want %s", got, tc.want)
			}
			if _, ok := hostHit(tg, "patroni2"); ok {
				t.Error("the healed host is still remembered")
			}
		})
	}
	tg, _, _ := target(t)
	tg.Hosts = &hostsRec{}
	if _, err := Inject(context.Background(), HostDown{}, tg, "patroni1"); err == nil || !strings.Contains(err.Error(), "which host runs patroni1") {
		t.Errorf("unknown host: %v", err)
	}
	if got := len(For(tg)); got != len(All()) {
		t.Errorf("For a target with hosts: %d faults of %d", got, len(All()))
	}
	tg.Hosts = nil
	for _, f := range For(tg) {
		if f.Promises().NeedsHosts {
			t.Errorf("For a target on one engine lists %s", f.Name())
		}
	}
	p := HostDown{}.Promises()
	if p.On != OnPrimary || p.Failover != FailoverExpected || p.EngineConfirmsDeath || p.Graceful || p.Holds || !p.NeedsHosts {
		t.Errorf("host-down promises %+v", p)
	}
	p = HostPartition{}.Promises()
	if p.On != OnPrimary || p.Failover != FailoverExpected || p.EngineConfirmsDeath || p.Graceful || !p.Holds || p.Hold != 0 || p.CutsPorts || !p.NeedsHosts {
		t.Errorf("host-partition promises %+v", p)
	}
}
