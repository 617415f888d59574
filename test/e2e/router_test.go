package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/failover"
	"github.com/pgha/pgha/pkg/topology"
)

// roWatch opens sessions through the router's replica port again and again
// and records every answer that was not in recovery.
type roWatch struct {
	mu          sync.Mutex
	answers     int
	fromPrimary []string
	stop        context.CancelFunc
	done        chan struct{}
}

func watchReadOnly(acc clients.Access) *roWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &roWatch{stop: cancel, done: make(chan struct{})}
	url := acc.RouterReadOnlyURL("sslmode=disable", "connect_timeout=1")
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			if conn, err := pgx.Connect(pctx, url); err == nil {
				var rec bool
				var node string
				if err := conn.QueryRow(pctx, clients.WhoAmI).Scan(&rec, &node); err == nil {
					w.mu.Lock()
					w.answers++
					if !rec {
						w.fromPrimary = append(w.fromPrimary, fmt.Sprintf("%s at %s", node, time.Now().Format("15:04:05.000")))
					}
					w.mu.Unlock()
				}
				conn.Close(pctx)
			}
			pcancel()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return w
}

func (w *roWatch) end() (int, []string) {
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answers, w.fromPrimary
}

// holdThroughRouter opens an idle session through the router's primary port whose
// closing time the test watches on the socket itself.
func holdThroughRouter(t *testing.T, acc clients.Access) (node string, closed <-chan time.Time, conn *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, acc.RouterURL("sslmode=disable", "connect_timeout=3"))
	if err != nil {
		t.Fatalf("connecting through the router: %v", err)
	}
	var rec bool
	if err := conn.QueryRow(ctx, clients.WhoAmI).Scan(&rec, &node); err != nil || rec {
		t.Fatalf("the router's primary port reached %s, in recovery %v (%v)", node, rec, err)
	}
	ch := make(chan time.Time, 1)
	raw := conn.PgConn().Conn()
	go func() {
		buf := make([]byte, 256)
		for {
			if _, err := raw.Read(buf); err != nil {
				ch <- time.Now()
				return
			}
		}
	}()
	return node, ch, conn
}

// The router follows a kill and a stop of the primary: writes through
// 127.0.0.1:5000 (shifted) resume within 0.3 s of the direct multi-host
// DSN's in the same run, the replica port never answers from a primary, and
// a session held on the old primary through the router is closed at once.
// Not parallel, so it runs alone before the others: it compares two write
// gaps measured in one run, which other clusters' load on two cores would blur.
func TestRouter(t *testing.T) {
	c := newCluster(t, 3, 3)
	c.up(t)
	acc := c.access(t)

	st := c.status(t)
	found := false
	for _, n := range st.Nodes {
		if n.Service == topology.RoleRouter {
			found = true
			if !n.Healthy || n.State != "running" || len(n.Ports) != 3 || !strings.Contains(n.Health, fmt.Sprintf("%d→patroni2", c.topo.RouterPorts.Primary)) {
				t.Errorf("router status row %+v", n)
			}
		}
	}
	if !found {
		t.Fatalf("status has no router row: %+v", st.Nodes)
	}
	rep, _ := c.verify(t)
	routerChecks := 0
	for _, ck := range rep.Checks {
		if ck.Group == "router" {
			routerChecks++
			if !ck.OK {
				t.Errorf("verify router check %s: %s", ck.Name, ck.Detail)
			}
		}
	}
	if routerChecks != 3 || !rep.OK {
		t.Errorf("verify: %d router checks, ok %v: %s", routerChecks, rep.OK, failedRows(rep))
	}
	env := mustPgha(t, "env", "--name", c.name).stdout
	for _, want := range []string{fmt.Sprintf("DATABASE_URL='postgres://postgres:%s@127.0.0.1:%d/postgres'", acc.Creds.SuperuserPassword, c.topo.RouterPorts.Primary),
		fmt.Sprintf("DATABASE_URL_RO='postgres://postgres:%s@127.0.0.1:%d/postgres'", acc.Creds.SuperuserPassword, c.topo.RouterPorts.Replicas),
		"DATABASE_URL_DIRECT='postgres://postgres:", "target_session_attrs=read-write'"} {
		if !strings.Contains(env, want) {
			t.Errorf("pgha env lacks %s:\n%s", want, env)
		}
	}

	for _, fault := range []string{"kill", "stop"} {
		t.Run(fault, func(t *testing.T) {
			ro := watchReadOnly(acc)
			held, closed, conn := holdThroughRouter(t, acc)
			defer conn.Close(context.Background())
			rep := c.failover(t, "failover-test", "--fault", fault)
			answers, fromPrimary := ro.end()
			rr := rep.Router
			if rr == nil {
				t.Fatalf("failover-test reported nothing through the router: %+v", rep)
			}
			diff := rr.UnavailableSec - rep.UnavailableSec
			t.Logf("%s: write gap through the router %.2f s, direct multi-host DSN %.2f s (difference %+.2f s); router writes acked %d, lost %d",
				fault, rr.UnavailableSec, rep.UnavailableSec, diff, rr.Audit.Acked, rr.LostAcked)
			// The bound, 0.3 s, after a stop (+0.02–0.30 s measured)
			// and after a kill (-0.07–+0.26 s here since a failed client
			// connection no longer marks the node down from inside its
			// session, which froze one or two reconnecting clients per kill
			// until their own 1 s connect timeout: +0.35–0.44 s before).
			const bound = 0.3
			withinBound := func(rep failover.Report) bool {
				return rep.Router != nil && rep.Router.UnavailableSec > 0 && rep.Router.UnavailableSec-rep.UnavailableSec <= bound
			}
			// One check delayed on a busy machine is enough to miss the
			// bound (+0.30 s seen once with three busy containers beside
			// the tests): a router that trails the direct DSN misses it in
			// a second run too, checked at the end of this subtest.
			if !withinBound(rep) {
				t.Logf("%s: the router's write gap %.2f s is not within %.1f s of the direct DSN's %.2f s; the fault runs once more at the end", fault, rr.UnavailableSec, bound, rep.UnavailableSec)
				defer func() {
					again := c.failover(t, "failover-test", "--fault", fault)
					if !withinBound(again) {
						t.Errorf("%s, twice: the router's write gap is not within %.1f s of the direct DSN's: %+v, direct %.2f s", fault, bound, again.Router, again.UnavailableSec)
					}
				}()
			}
			if rr.Audit.Acked == 0 || len(rr.Audit.Phantom) != 0 {
				t.Errorf("writes through the router: %+v", rr.Audit)
			}
			// The test's own probes of the replica port, and failover-test's.
			t.Logf("%s: replica port answered %d times here, %d in failover-test", fault, answers, rr.ReadOnlyAnswers)
			if answers < 20 || len(fromPrimary) > 0 || rr.ReadOnlyFromPrimary != 0 {
				t.Errorf("%s: replica port: %d answers, from a primary: %v; failover-test: %d of %d", fault, answers, fromPrimary, rr.ReadOnlyFromPrimary, rr.ReadOnlyAnswers)
			}
			// The session held on the old primary was closed by the router,
			// not left hanging.
			if held != rep.OldPrimary {
				t.Fatalf("the held session was on %s, the old primary %s", held, rep.OldPrimary)
			}
			select {
			case at := <-closed:
				after := at.Sub(rep.FaultAt)
				t.Logf("%s: the session held on %s through the router was closed %.2f s after the fault", fault, held, after.Seconds())
				if after > 5*time.Second {
					t.Errorf("the held session closed only %s after the fault", after)
				}
			default:
				t.Errorf("%s: the session held on %s through the router is still open after the run", fault, held)
			}
			if c := rr.HeldSessionClosedSec; c == nil || *c < 0 || *c > 5 {
				t.Errorf("failover-test's held session: %v", c)
			}
			// The router follows the new primary: a write through it lands there.
			eventually(t, 10*time.Second, "the router's primary port on the new primary", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				conn, err := acc.ConnectRouter(ctx, false)
				if err != nil {
					return err
				}
				defer conn.Close(ctx)
				var rec bool
				var node string
				if err := conn.QueryRow(ctx, clients.WhoAmI).Scan(&rec, &node); err != nil {
					return err
				}
				if rec || node != rep.NewPrimary {
					return fmt.Errorf("reached %s (in recovery %v), want %s", node, rec, rep.NewPrimary)
				}
				return nil
			})
		})
	}
}

// --router=false: no router container, no status row, no verify checks,
// DATABASE_URL the multi-host DSN.
func TestRouterOff(t *testing.T) {
	parallel(t)
	c := newCluster(t, 1, 2).withoutRouter()
	c.up(t)
	st := c.status(t)
	for _, n := range st.Nodes {
		if n.Service == topology.RoleRouter {
			t.Errorf("status shows a router: %+v", n)
		}
	}
	if len(st.Problems) != 0 {
		t.Errorf("problems: %v", st.Problems)
	}
	rep, _ := c.verify(t)
	for _, ck := range rep.Checks {
		if ck.Group == "router" {
			t.Errorf("verify checks the router: %+v", ck)
		}
	}
	if !rep.OK {
		t.Errorf("verify: %s", failedRows(rep))
	}
	if _, err := docker.ContainerInspect(context.Background(), c.name+"-router"); err == nil {
		t.Error("a router container exists")
	}
	env := mustPgha(t, "env", "--name", c.name).stdout
	if !strings.Contains(env, "target_session_attrs=read-write") || strings.Contains(env, "DATABASE_URL_RO") {
		t.Errorf("pgha env without a router:\n%s", env)
	}
	// Plain up keeps it off.
	r := mustPgha(t, "up", "--name", c.name)
	if !strings.Contains(r.stderr, "nothing changed") {
		t.Errorf("up on a router-less cluster changed something:\n%s", r)
	}
}
