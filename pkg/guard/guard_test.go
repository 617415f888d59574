package guard

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/pgha/pgha/pkg/engine/enginetest"
	"github.com/pgha/pgha/pkg/topology"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// kv is an in-memory etcd with what the guard uses: Get and a transaction
// that compares value and revision before a delete.
type kv struct {
	clientv3.KV
	mu  sync.Mutex
	rev int64
	m   map[string]*mvccpb.KeyValue
}

func newKV() *kv { return &kv{m: map[string]*mvccpb.KeyValue{}} }

func (k *kv) put(key, val string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rev++
	k.m[key] = &mvccpb.KeyValue{Key: []byte(key), Value: []byte(val), ModRevision: k.rev}
}

func (k *kv) value(key string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	if !ok {
		return "", false
	}
	return string(v.Value), true
}

func (k *kv) Get(_ context.Context, key string, _ ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := &clientv3.GetResponse{Header: &pb.ResponseHeader{Revision: k.rev}}
	if v, ok := k.m[key]; ok {
		r.Kvs, r.Count = []*mvccpb.KeyValue{v}, 1
	}
	return r, nil
}

func (k *kv) Txn(context.Context) clientv3.Txn { return &txn{kv: k} }

type txn struct {
	kv   *kv
	cmps []clientv3.Cmp
	then []clientv3.Op
}

func (t *txn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.cmps = cs; return t }
func (t *txn) Then(ops ...clientv3.Op) clientv3.Txn { t.then = ops; return t }
func (t *txn) Else(...clientv3.Op) clientv3.Txn     { return t }
func (t *txn) Commit() (*clientv3.TxnResponse, error) {
	t.kv.mu.Lock()
	defer t.kv.mu.Unlock()
	for _, c := range t.cmps {
		v, ok := t.kv.m[string(c.KeyBytes())]
		if !ok || c.Result != pb.Compare_EQUAL {
			return &clientv3.TxnResponse{Succeeded: false}, nil
		}
		switch c.Target {
		case pb.Compare_VALUE:
			if !bytes.Equal(v.Value, c.ValueBytes()) {
				return &clientv3.TxnResponse{Succeeded: false}, nil
			}
		case pb.Compare_MOD:
			if v.ModRevision != c.TargetUnion.(*pb.Compare_ModRevision).ModRevision {
				return &clientv3.TxnResponse{Succeeded: false}, nil
			}
		default:
			return nil, errors.New("compare not faked")
		}
	}
	for _, op := range t.then {
		if !op.IsDelete() {
			return nil, errors.New("op not faked")
		}
		delete(t.kv.m, string(op.KeyBytes()))
		t.kv.rev++
	}
	return &clientv3.TxnResponse{Succeeded: true}, nil
}

// logBuffer collects the guard's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) records() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ParseLog(bytes.NewReader(l.b.Bytes()))
}

// guardOn is a guard of cluster lab (3 Patroni nodes) on a fake engine whose
// patroni2 is in state; the leader key names patroni2.
func guardOn(t *testing.T, state container.ContainerState, streams ...enginetest.EventStream) (*Guard, *enginetest.Engine, *kv, *logBuffer) {
	t.Helper()
	topo, _ := topology.Generate("lab", 3, 3)
	e := enginetest.New()
	for _, n := range topo.Patroni {
		st := container.StateRunning
		if n.Name == "patroni2" {
			st = state
		}
		e.AddContainer(enginetest.Container{Name: topo.ContainerName(n.Name), State: st, ExitCode: 137,
			Labels: map[string]string{topology.LabelCluster: "lab", topology.LabelRole: topology.RolePatroni, topology.LabelNode: n.Name}})
	}
	e.EventStreams = streams
	// A container with the cluster's labels that pgha did not plan.
	e.AddContainer(enginetest.Container{Name: "impostor", State: container.StateExited, ExitCode: 137,
		Labels: map[string]string{topology.LabelCluster: "lab", topology.LabelRole: topology.RolePatroni, topology.LabelNode: "patroni2"}})
	k := newKV()
	k.put(topo.KeyPrefix()+"leader", "patroni2")
	log := &logBuffer{}
	return &Guard{Engine: e, Etcd: k, Config: ConfigFor(topo), Log: log}, e, k, log
}

// run runs the guard until cond holds (or 5 s), then stops it.
func run(t *testing.T, g *Guard, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func find(recs []Record, event, outcome string) *Record {
	for i := range recs {
		if recs[i].Event == event && (outcome == "" || recs[i].Outcome == outcome) {
			return &recs[i]
		}
	}
	return nil
}

// On connecting, the guard looks at the state of now: a leader key naming a
// dead member goes.
func TestReconcileDeletesADeadLeadersKey(t *testing.T) {
	g, _, k, log := guardOn(t, container.StateExited)
	key := g.Config.LeaderKey
	run(t, g, func() bool { _, ok := k.value(key); return !ok })
	if _, ok := k.value(key); ok {
		t.Fatal("the dead leader's key is still there")
	}
	if r := find(log.records(), EventReconcile, OutcomeDeleted); r == nil || r.Member != "patroni2" {
		t.Errorf("no reconcile deletion in the log: %+v", log.records())
	}
}

// A live leader's key is never touched, on reconcile or on a replica's death.
func TestReconcileLeavesALiveLeader(t *testing.T) {
	msgs := make(chan events.Message, 1)
	g, e, k, log := guardOn(t, container.StateRunning, enginetest.EventStream{Msgs: msgs, Errs: make(chan error)})
	e.Containers["lab-patroni1"].State = container.StateExited
	msgs <- events.Message{Action: events.ActionDie, Actor: events.Actor{ID: e.Containers["lab-patroni1"].ID}, TimeNano: time.Now().Add(time.Second).UnixNano()}
	run(t, g, func() bool { return find(log.records(), EventDie, "") != nil })
	if v, ok := k.value(g.Config.LeaderKey); !ok || v != "patroni2" {
		t.Errorf("leader key %q %v", v, ok)
	}
	if r := find(log.records(), EventDie, OutcomeLeftAlone); r == nil || r.Member != "patroni1" {
		t.Errorf("the replica's death: %+v", log.records())
	}
}

// An event from before the subscription is stale and ignored: the
// reconciliation has judged the state of now.
func TestStaleEventIsIgnored(t *testing.T) {
	msgs := make(chan events.Message, 1)
	g, e, k, log := guardOn(t, container.StateRunning, enginetest.EventStream{Msgs: msgs, Errs: make(chan error)})
	// patroni2 died long ago, then started again (running now); its old
	// die event arrives late.
	msgs <- events.Message{Action: events.ActionDie, Actor: events.Actor{ID: e.Containers["lab-patroni2"].ID, Attributes: map[string]string{"name": "lab-patroni2"}},
		TimeNano: time.Now().Add(-time.Minute).UnixNano()}
	run(t, g, func() bool { return find(log.records(), "die", "") != nil })
	if r := find(log.records(), "die", ""); r == nil || r.Reason != "an event from before the connection: stale, ignored" {
		t.Errorf("stale event: %+v", log.records())
	}
	if _, ok := k.value(g.Config.LeaderKey); !ok {
		t.Error("the leader key went on a stale event")
	}
}

// A dropped event stream is reopened; each connection reconciles again.
func TestReconnectsAfterTheStreamDrops(t *testing.T) {
	errs := make(chan error, 1)
	g, e, k, log := guardOn(t, container.StateRunning, enginetest.EventStream{Msgs: make(chan events.Message), Errs: errs})
	dropped := false
	run(t, g, func() bool {
		n := 0
		for _, r := range log.records() {
			if r.Event == "connected" {
				n++
			}
		}
		if n == 1 && !dropped {
			dropped = true
			errs <- errors.New("unexpected EOF") // the engine restarts, say
		}
		return n >= 2
	})
	recs := log.records()
	if find(recs, "disconnected", "") == nil {
		t.Errorf("no disconnection logged: %+v", recs)
	}
	reconciles := 0
	for _, r := range recs {
		if r.Event == EventReconcile {
			reconciles++
		}
	}
	if reconciles < 2 || !e.Called("events") {
		t.Errorf("%d reconciliations for two connections", reconciles)
	}
	if _, ok := k.value(g.Config.LeaderKey); !ok {
		t.Error("a live leader's key went")
	}
}

// A die event of the leader deletes its key only if the key is unchanged
// since it was read: compare-and-delete.
func TestDieEventDeletesWithCompare(t *testing.T) {
	msgs := make(chan events.Message, 1)
	g, e, k, log := guardOn(t, container.StateRunning, enginetest.EventStream{Msgs: msgs, Errs: make(chan error)})
	key := g.Config.LeaderKey
	reconciled := false
	run(t, g, func() bool {
		if !reconciled && find(log.records(), EventReconcile, "") != nil {
			reconciled = true // connected and judged the live leader: now it dies
			e.Containers["lab-patroni2"].State = container.StateExited
			msgs <- events.Message{Action: events.ActionDie, Actor: events.Actor{ID: e.Containers["lab-patroni2"].ID}, TimeNano: time.Now().UnixNano()}
		}
		_, ok := k.value(key)
		return !ok
	})
	if r := find(log.records(), EventDie, OutcomeDeleted); r == nil || r.DecisionMs <= 0 || r.EventTime == nil {
		t.Errorf("die decision: %+v", log.records())
	}
	// A key rewritten between the read and the delete survives.
	k.put(key, "patroni2")
	leader, _ := g.readLeader(context.Background())
	k.put(key, "patroni2") // a new lease: a new revision
	if deleted, err := g.compareAndDelete(context.Background(), leader); err != nil || deleted {
		t.Errorf("compare-and-delete of a changed key: deleted %v, %v", deleted, err)
	}
	if v, ok := k.value(key); !ok || v != "patroni2" {
		t.Error("the rewritten key went")
	}
}

// Docker 20.10 emits die before it updates the container list: the guard
// asks again until the list confirms the exit, then deletes.
func TestDieEventWaitsForTheListToConfirm(t *testing.T) {
	defer func(w time.Duration) { dieTrustWindow = w }(dieTrustWindow)
	dieTrustWindow = 0 // an old event: the list must agree
	msgs := make(chan events.Message, 1)
	g, e, k, log := guardOn(t, container.StateRunning, enginetest.EventStream{Msgs: msgs, Errs: make(chan error)})
	id := e.Containers["lab-patroni2"].ID
	reconciled := false
	run(t, g, func() bool {
		if !reconciled && find(log.records(), EventReconcile, "") != nil {
			reconciled = true
			msgs <- dieEvent(id, "lab-patroni2", time.Now())
			go func() {
				time.Sleep(150 * time.Millisecond)
				_ = e.ContainerKill(context.Background(), id, "KILL") // the list catches up
			}()
		}
		_, ok := k.value(g.Config.LeaderKey)
		return !ok
	})
	r := find(log.records(), EventDie, OutcomeDeleted)
	if r == nil || r.ConfirmMs < 100 || !strings.Contains(r.Reason, "exit code 137") || r.Container != "lab-patroni2" {
		t.Fatalf("die decision: %+v", log.records())
	}
}

// A die event of a container that carries the cluster's labels but is not
// one pgha planned leaves the key alone.
func TestImpostorsDeathIsIgnored(t *testing.T) {
	msgs := make(chan events.Message, 1)
	g, e, k, log := guardOn(t, container.StateRunning, enginetest.EventStream{Msgs: msgs, Errs: make(chan error)})
	msgs <- dieEvent(e.Containers["impostor"].ID, "impostor", time.Now().Add(time.Second))
	run(t, g, func() bool { return find(log.records(), EventDie, "") != nil })
	if r := find(log.records(), EventDie, OutcomeLeftAlone); r == nil || !strings.Contains(r.Reason, "not a Patroni node pgha created") {
		t.Errorf("impostor: %+v", log.records())
	}
	if _, ok := k.value(g.Config.LeaderKey); !ok {
		t.Error("the leader key went on an impostor's death")
	}
}

func TestStatusExitCode(t *testing.T) {
	for status, want := range map[string]int{"Exited (137) 2 seconds ago": 137, "Exited (0) About a minute ago": 0, "Up 3 minutes": -1, "": -1, "Created": -1} {
		if got := statusExitCode(status); got != want {
			t.Errorf("statusExitCode(%q) = %d, want %d", status, got, want)
		}
	}
}

// A die event whose container the list keeps reporting running (started
// again, say) never deletes the key: each attempt says why, and the last
// one is a failure left to the lease.
func TestDieEventOfAContainerStillRunning(t *testing.T) {
	defer func(w, d time.Duration) { confirmWait, dieTrustWindow = w, d }(confirmWait, dieTrustWindow)
	confirmWait, dieTrustWindow = 50*time.Millisecond, 0
	msgs := make(chan events.Message, 1)
	g, e, k, log := guardOn(t, container.StateRunning, enginetest.EventStream{Msgs: msgs, Errs: make(chan error)})
	msgs <- dieEvent(e.Containers["lab-patroni2"].ID, "lab-patroni2", time.Now().Add(time.Second))
	run(t, g, func() bool {
		return find(log.records(), EventDie, OutcomeFailed) != nil && len(log.records()) >= 3+attempts
	})
	fails := 0
	for _, r := range log.records() {
		if r.Event == EventDie && r.Outcome == OutcomeFailed {
			fails++
			if !strings.Contains(r.Reason, "still lists it running") {
				t.Errorf("reason %q", r.Reason)
			}
		}
	}
	if fails != attempts {
		t.Errorf("%d failed attempts, want %d: %+v", fails, attempts, log.records())
	}
	if _, ok := k.value(g.Config.LeaderKey); !ok {
		t.Error("the key of a member the engine lists running went")
	}
}

// A fresh die event is enough on its own: the key goes at once although the
// list still says running (it lags the event by the engine's cleanup).
func TestFreshDieEventIsTrusted(t *testing.T) {
	msgs := make(chan events.Message, 1)
	g, e, k, log := guardOn(t, container.StateRunning, enginetest.EventStream{Msgs: msgs, Errs: make(chan error)})
	id := e.Containers["lab-patroni2"].ID
	reconciled := false
	run(t, g, func() bool {
		if !reconciled && find(log.records(), EventReconcile, "") != nil {
			reconciled = true
			msgs <- dieEvent(id, "lab-patroni2", time.Now())
		}
		_, ok := k.value(g.Config.LeaderKey)
		return !ok
	})
	r := find(log.records(), EventDie, OutcomeDeleted)
	if r == nil || r.ConfirmMs > 100 || !strings.Contains(r.Reason, "exit code 137) according to the engine's die event") {
		t.Fatalf("die decision: %+v", log.records())
	}
}

// dieEvent is the engine's die event of a SIGKILLed container, as the
// engine words it: its name and exit code among the attributes.
func dieEvent(id, name string, at time.Time) events.Message {
	return events.Message{Action: events.ActionDie, TimeNano: at.UnixNano(),
		Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name, "exitCode": "137"}}}
}
