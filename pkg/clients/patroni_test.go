package clients

import (
	"reflect"
	"testing"
)

// Synchronous reads Patroni's synchronous_mode as Patroni writes it: a
// boolean, or Patroni 4's "quorum"; absent means off.
func TestSynchronous(t *testing.T) {
	for _, c := range []struct {
		cfg  map[string]any
		want bool
	}{
		{map[string]any{"synchronous_mode": true}, true},
		{map[string]any{"synchronous_mode": false}, false},
		{map[string]any{"synchronous_mode": "quorum"}, true},
		{map[string]any{"synchronous_mode": "off"}, false},
		{map[string]any{"loop_wait": 1}, false},
	} {
		if got := Synchronous(c.cfg); got != c.want {
			t.Errorf("Synchronous(%v) = %v, want %v", c.cfg, got, c.want)
		}
	}
}

// Only a synchronous standby that streams counts.
func TestSyncStandbys(t *testing.T) {
	v := ClusterView{Members: []Member{
		{Name: "patroni2", Role: "leader", State: "running"},
		{Name: "patroni1", Role: "sync_standby", State: "streaming"},
		{Name: "patroni3", Role: "sync_standby", State: "starting"},
		{Name: "patroni4", Role: "replica", State: "streaming"},
	}}
	if got, want := v.SyncStandbys(), []string{"patroni1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SyncStandbys() = %v, want %v", got, want)
	}
	if got := (ClusterView{}).SyncStandbys(); len(got) != 0 {
		t.Errorf("no members: %v", got)
	}
}
