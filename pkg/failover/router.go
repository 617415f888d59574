package failover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/poll"
)

// RouterReport is what a failover test saw through the cluster's router,
// beside the direct multi-host DSN's figures in the same run.
type RouterReport struct {
	// UnavailableSec is the write gap of a second writer that writes
	// through the router's primary port.
	UnavailableSec float64 `json:"writeUnavailableSeconds"`
	GapFromSec     float64 `json:"gapFromSeconds"`
	GapToSec       float64 `json:"gapToSeconds"`
	// DiffSec is the router's gap minus the direct DSN's.
	DiffSec   float64 `json:"gapDifferenceSeconds"`
	Audit     Audit   `json:"writes"`
	LostAcked int     `json:"lostAckedWrites"`
	// ReadOnlyAnswers counts the sessions opened through the replica port
	// during the run that answered; ReadOnlyFromPrimary those of them that
	// were not in recovery (must be 0).
	ReadOnlyAnswers     int      `json:"readOnlyAnswers"`
	ReadOnlyFromPrimary int      `json:"readOnlyFromPrimary"`
	ReadOnlyPrimaries   []string `json:"readOnlyPrimaryNodes,omitempty"`
	// HeldSessionClosedSec: a session opened through the primary port on the
	// old primary before the fault, idle, was closed this long after the
	// fault; -1 when it was still open at the end (hanging). Only when the
	// fault hits the primary.
	HeldSessionClosedSec *float64 `json:"heldSessionClosedSeconds,omitempty"`
	HeldSessionNode      string   `json:"heldSessionNode,omitempty"`
}

// NewRouterWriter writes into table through the router's primary port.
func NewRouterWriter(acc clients.Access, table string) *Writer {
	dsn := acc.RouterURL("sslmode=disable", "connect_timeout=1", "application_name=pgha-router-writer")
	return &Writer{dsn: dsn, table: table, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second}
}

// readOnlyProber opens a session through the router's replica port every
// 50 ms (each one a new backend on a replica: more would load the machine
// the test measures) and records whether the node that answered was in
// recovery.
type readOnlyProber struct {
	acc       clients.Access
	mu        sync.Mutex
	answers   int
	primaries map[string]bool
	fromPrim  int
}

func (p *readOnlyProber) run(ctx context.Context) {
	p.primaries = map[string]bool{}
	url := p.acc.RouterReadOnlyURL("sslmode=disable", "connect_timeout=1", "application_name=pgha-ro-probe")
	for ctx.Err() == nil {
		p.probe(ctx, url)
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *readOnlyProber) probe(ctx context.Context, url string) {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(pctx, url)
	if err != nil {
		return
	}
	defer closeConn(ctx, conn)
	var inRecovery bool
	var node string
	if err := conn.QueryRow(pctx, clients.WhoAmI).Scan(&inRecovery, &node); err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers++
	if !inRecovery {
		p.fromPrim++
		p.primaries[node] = true
	}
}

// heldSession is an idle session through the router's primary port; closed
// says when the router (or the server) closed it.
type heldSession struct {
	node   string
	closed chan time.Time
	conn   *pgx.Conn
}

// holdSession opens a session through the primary port and watches its
// socket: an idle session learns of its end only by a read that returns.
func holdSession(ctx context.Context, acc clients.Access) (*heldSession, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, acc.RouterURL("sslmode=disable", "connect_timeout=3", "application_name=pgha-held-session"))
	if err != nil {
		return nil, fmt.Errorf("opening a session through the router: %v", clients.PGErr(err))
	}
	var inRecovery bool
	h := &heldSession{closed: make(chan time.Time, 1), conn: conn}
	if err := conn.QueryRow(cctx, clients.WhoAmI).Scan(&inRecovery, &h.node); err != nil {
		closeConn(ctx, conn)
		return nil, fmt.Errorf("querying through the router: %v", clients.PGErr(err))
	}
	if inRecovery {
		closeConn(ctx, conn)
		return nil, errors.New("the router's primary port reached a node in recovery")
	}
	raw := conn.PgConn().Conn()
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := raw.Read(buf); err != nil {
				h.closed <- time.Now()
				return
			}
		}
	}()
	return h, nil
}

// wait returns when the session was closed, or -1 when it is still open
// after d.
func (h *heldSession) wait(ctx context.Context, faultAt time.Time, d time.Duration) float64 {
	defer func() {
		_ = h.conn.PgConn().Conn().Close()
	}()
	select {
	case at := <-h.closed:
		return at.Sub(faultAt).Seconds()
	case <-time.After(time.Until(faultAt.Add(d))):
		return -1
	case <-ctx.Done():
		return -1
	}
}

// routerRun is the router's part of a failover test: a second writer, the
// replica-port prober and the held session.
type routerRun struct {
	w      *Writer
	ro     *readOnlyProber
	held   *heldSession
	stop   context.CancelFunc
	done   sync.WaitGroup
	closed chan float64
}

// startRouter starts the second writer and the prober; the held session is
// opened on the primary when the fault will hit it.
func startRouter(ctx context.Context, acc clients.Access, table string, holdOnPrimary bool) (*routerRun, error) {
	r := &routerRun{w: NewRouterWriter(acc, table), ro: &readOnlyProber{acc: acc}}
	if err := r.w.Setup(ctx); err != nil {
		return nil, fmt.Errorf("preparing the writer through the router: %w", err)
	}
	if holdOnPrimary {
		h, err := holdSession(ctx, acc)
		if err != nil {
			return nil, err
		}
		r.held = h
	}
	rctx, cancel := context.WithCancel(ctx)
	r.stop = cancel
	r.done.Add(2)
	go func() { defer r.done.Done(); r.w.Run(rctx) }()
	go func() { defer r.done.Done(); r.ro.run(rctx) }()
	return r, nil
}

// waitAcked waits for the router's writer to get its first writes through.
func (r *routerRun) waitAcked(ctx context.Context) error {
	return poll.For(ctx, 10*time.Second, 50*time.Millisecond, func(context.Context) (bool, error) {
		return countAcked(r.w.Writes()) >= 20, nil
	})
}

// watchHeld starts waiting for the held session to close after the fault.
func (r *routerRun) watchHeld(ctx context.Context, faultAt time.Time, d time.Duration) {
	if r.held == nil {
		return
	}
	r.closed = make(chan float64, 1)
	go func() { r.closed <- r.held.wait(ctx, faultAt, d) }()
}

// finish stops the writer and the prober and fills the report.
func (r *routerRun) finish(ctx context.Context, faultAt time.Time, direct float64) RouterReport {
	r.stop()
	r.done.Wait()
	gap, from, to, _ := Gap(r.w.Writes(), faultAt)
	rr := RouterReport{UnavailableSec: gap.Seconds(), GapFromSec: from.Sub(faultAt).Seconds(), GapToSec: to.Sub(faultAt).Seconds()}
	rr.DiffSec = rr.UnavailableSec - direct
	if a, err := r.w.AuditWrites(ctx); err == nil {
		rr.Audit, rr.LostAcked = a, len(a.Lost)
	}
	r.ro.mu.Lock()
	rr.ReadOnlyAnswers, rr.ReadOnlyFromPrimary = r.ro.answers, r.ro.fromPrim
	for n := range r.ro.primaries {
		rr.ReadOnlyPrimaries = append(rr.ReadOnlyPrimaries, n)
	}
	r.ro.mu.Unlock()
	if r.closed != nil {
		s := <-r.closed
		rr.HeldSessionClosedSec, rr.HeldSessionNode = &s, r.held.node
	}
	return rr
}

// close stops the writer and the prober and closes the held session: on
// every way out of a run.
func (r *routerRun) close() {
	r.stop()
	r.done.Wait()
	if r.held != nil {
		_ = r.held.conn.PgConn().Conn().Close()
	}
}

// drop removes the router writer's table.
func (r *routerRun) drop(ctx context.Context) {
	dctx, cancel := poll.Detached(ctx, 10*time.Second)
	defer cancel()
	_ = r.w.Drop(dctx)
}
