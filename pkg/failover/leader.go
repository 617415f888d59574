package failover

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// LeaderChange is one change of the leader key: who holds it from At on
// ("" when nobody does), and whether the key was created anew (a new lease:
// an election, possibly won again by the same member).
type LeaderChange struct {
	At      time.Time `json:"at"`
	Holder  string    `json:"holder"`
	Created bool      `json:"created,omitempty"`
}

// leaderRecorder follows the leader key for the whole run: its holder over
// time, for the measurements and the picture.
type leaderRecorder struct {
	mu      sync.Mutex
	changes []LeaderChange
	holder  string
	created int64 // CreateRevision of the key the holder holds
}

// recordLeader follows key until ctx ends: a read, then a watch from the
// read's revision, read again whenever the watch breaks (etcd restarted or
// lost its quorum).
func recordLeader(ctx context.Context, etcd *clientv3.Client, key string) *leaderRecorder {
	r := &leaderRecorder{holder: "?"}
	ready := make(chan struct{})
	go func() {
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		for ctx.Err() == nil {
			gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := etcd.Get(gctx, key)
			cancel()
			if err != nil {
				once()
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			if len(resp.Kvs) == 0 {
				r.note("", 0, time.Now())
			} else {
				r.note(string(resp.Kvs[0].Value), resp.Kvs[0].CreateRevision, time.Now())
			}
			once()
			wctx, wcancel := context.WithCancel(ctx)
			for wr := range etcd.Watch(clientv3.WithRequireLeader(wctx), key, clientv3.WithRev(resp.Header.Revision+1)) {
				if wr.Err() != nil {
					break
				}
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypeDelete {
						r.note("", 0, time.Now())
					} else {
						r.note(string(ev.Kv.Value), ev.Kv.CreateRevision, time.Now())
					}
				}
			}
			wcancel()
		}
	}()
	select { // the first read, so that the holder before the fault is known
	case <-ready:
	case <-time.After(3 * time.Second):
	}
	return r
}

func (r *leaderRecorder) note(holder string, created int64, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	isNew := created != 0 && created != r.created
	if holder == r.holder && !isNew {
		return
	}
	r.changes = append(r.changes, LeaderChange{At: at, Holder: holder, Created: isNew && r.holder != "?"})
	r.holder, r.created = holder, created
}

// Changes returns the changes so far.
func (r *leaderRecorder) Changes() []LeaderChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LeaderChange(nil), r.changes...)
}

// newLeader returns the first change after t that names a leader other than
// old, or (sameToo) any leader key created anew.
func (r *leaderRecorder) newLeader(t time.Time, old string, sameToo bool) (LeaderChange, bool) {
	for _, c := range r.Changes() {
		if c.At.Before(t) || c.Holder == "" {
			continue
		}
		if c.Holder != old || (sameToo && c.Created) {
			return c, true
		}
	}
	return LeaderChange{}, false
}
