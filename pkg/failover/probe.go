package failover

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/faults"
)

// NodeState is what one probe saw of a Patroni node.
type NodeState string

// The states a probe tells apart.
const (
	// Writable: not in recovery, and a write was acknowledged.
	Writable NodeState = "writable"
	// Stalled: not in recovery, but the write was refused, timed out or not
	// confirmed by a synchronous standby.
	Stalled NodeState = "primary-no-ack"
	// Replica: in recovery.
	Replica NodeState = "replica"
	// Down: no answer.
	Down NodeState = "down"
)

// Probe is one look at a node.
type Probe struct {
	Node  string    `json:"node"`
	Sent  time.Time `json:"sent"`
	Done  time.Time `json:"done"`
	State NodeState `json:"state"`
	// ServerAt is the node's clock_timestamp() at the acknowledged write
	// (containers share the engine's clock): when it was writable.
	ServerAt time.Time `json:"serverAt,omitzero"`
	// Inside: the probe ran psql inside the node's container (its ports were cut).
	Inside bool   `json:"inside,omitempty"`
	Err    string `json:"error,omitempty"`
}

// SplitBrain is a span of time when two or more nodes took writes.
type SplitBrain struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Nodes []string  `json:"nodes"`
	// FromSec and ToSec place it relative to the fault.
	FromSec float64 `json:"fromSeconds"`
	ToSec   float64 `json:"toSeconds"`
}

func (s SplitBrain) String() string {
	return fmt.Sprintf("%s writable at once from %s to %s (%.3f s)", strings.Join(s.Nodes, " and "),
		s.From.Format("15:04:05.000"), s.To.Format("15:04:05.000"), s.To.Sub(s.From).Seconds())
}

// Detector probes every Patroni node about every 100 ms for "writable
// primary": pg_is_in_recovery() is false and a write into its own small
// table is acknowledged. Two nodes writable at the same moment is a split
// brain. A node whose ports are cut is probed with psql inside its
// container (every 250 ms: an exec costs more).
type Detector struct {
	acc   clients.Access
	ft    faults.Target
	table string
	// Interval between probes of one node.
	Interval time.Duration

	mu     sync.Mutex
	probes []Probe
	inside map[string]bool
	notes  []string
}

// NewDetector probes the cluster's nodes, writing into table.
func NewDetector(acc clients.Access, ft faults.Target, table string) *Detector {
	return &Detector{acc: acc, ft: ft, table: table, Interval: 100 * time.Millisecond, inside: map[string]bool{}}
}

// Setup creates the probe table on the primary: one row per node, updated by each write.
func (d *Detector) Setup(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.acc.MultiHostURL("sslmode=disable", "connect_timeout=3"))
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	_, err = conn.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (node text PRIMARY KEY, n bigint NOT NULL, at timestamptz NOT NULL)", pgx.Identifier{d.table}.Sanitize()))
	return err
}

// Drop removes the probe table.
func (d *Detector) Drop(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.acc.MultiHostURL("sslmode=disable", "connect_timeout=3"))
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	_, err = conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s", pgx.Identifier{d.table}.Sanitize()))
	return err
}

// Inside switches a node to probes from inside its container (its
// published ports are cut) or back.
func (d *Detector) Inside(node string, on bool) {
	d.mu.Lock()
	d.inside[node] = on
	d.mu.Unlock()
}

func (d *Detector) isInside(node string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inside[node]
}

// Run probes every node until ctx ends.
func (d *Detector) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range d.acc.Topo.Patroni {
		wg.Add(1)
		go func() { defer wg.Done(); d.probeLoop(ctx, n.Name) }()
	}
	wg.Wait()
}

// Probes returns every probe so far, in the order they finished.
func (d *Detector) Probes() []Probe {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Probe(nil), d.probes...)
}

// Notes says what the detector could not see.
func (d *Detector) Notes() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.notes...)
}

func (d *Detector) record(p Probe) {
	d.mu.Lock()
	d.probes = append(d.probes, p)
	d.mu.Unlock()
}

func (d *Detector) probeLoop(ctx context.Context, node string) {
	var conn *pgx.Conn
	var syncWarning bool
	defer func() {
		if conn != nil {
			closeConn(ctx, conn)
		}
	}()
	upsert := fmt.Sprintf("INSERT INTO %s AS t (node, n, at) VALUES ($1, 1, clock_timestamp()) ON CONFLICT (node) DO UPDATE SET n = t.n + 1, at = clock_timestamp() RETURNING at",
		pgx.Identifier{d.table}.Sanitize())
	for ctx.Err() == nil {
		next := time.Now().Add(d.Interval)
		if d.isInside(node) {
			if conn != nil {
				closeConn(ctx, conn)
				conn = nil
			}
			p := d.probeInside(ctx, node)
			if ctx.Err() == nil {
				d.record(p)
			}
			next = p.Sent.Add(250 * time.Millisecond)
		} else {
			p := Probe{Node: node, Sent: time.Now()}
			if conn == nil {
				var err error
				if conn, err = d.connect(ctx, node, &syncWarning); err != nil {
					conn = nil
					p.State, p.Err = Down, clients.PGErr(err)
				}
			}
			if conn != nil {
				syncWarning = false
				var broken bool
				p.State, p.ServerAt, p.Err, broken = probeConn(ctx, conn, upsert, node, &syncWarning)
				if broken {
					closeConn(ctx, conn)
					conn = nil
				}
			}
			p.Done = time.Now()
			if ctx.Err() != nil {
				return
			}
			d.record(p)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
	}
}

// probeConn asks a session whether its node is in recovery and, if not,
// writes; the statement's deadline closes the socket rather than cancel (a
// cancelled wait for a synchronous standby would report success). broken
// says the session is unusable.
func probeConn(ctx context.Context, conn *pgx.Conn, upsert, node string, syncWarning *bool) (st NodeState, at time.Time, msg string, broken bool) {
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var inRecovery bool
	if err := conn.QueryRow(qctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return Down, time.Time{}, clients.PGErr(err), true
	}
	if inRecovery {
		return Replica, time.Time{}, "", false
	}
	err := conn.QueryRow(qctx, upsert, node).Scan(&at)
	var pgErr *pgconn.PgError
	switch {
	case err == nil && !*syncWarning:
		return Writable, at, "", false
	case err == nil:
		return Stalled, time.Time{}, "committed locally, not confirmed by a synchronous standby", true
	case errors.As(err, &pgErr):
		return Stalled, time.Time{}, pgErr.Message, conn.IsClosed()
	default:
		// No answer to the write in time: a primary waiting for a
		// synchronous standby, most likely. Not writable; the session is gone.
		return Stalled, time.Time{}, "write: " + clients.PGErr(err), true
	}
}

func (d *Detector) connect(ctx context.Context, node string, syncWarning *bool) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(d.acc.ConnString(node))
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = time.Second
	cfg.RuntimeParams["application_name"] = "pgha-splitbrain-probe"
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if strings.Contains(n.Message, "synchronous replication") {
			*syncWarning = true
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return pgx.ConnectConfig(cctx, cfg)
}

// probeInside runs the probe with psql inside the node's container, over its
// Unix socket.
func (d *Detector) probeInside(ctx context.Context, node string) Probe {
	p := Probe{Node: node, Sent: time.Now(), Inside: true}
	eng, name := d.ft.Backend.Where(d.ft.Topo, node)
	ectx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	upsert := fmt.Sprintf("INSERT INTO %s AS t (node, n, at) VALUES ('%s', 1, clock_timestamp()) ON CONFLICT (node) DO UPDATE SET n = t.n + 1, at = clock_timestamp() RETURNING to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
		pgx.Identifier{d.table}.Sanitize(), node)
	res, err := eng.Exec(ectx, name, engine.ExecOptions{}, "psql", "-XAtq", "-v", "ON_ERROR_STOP=1",
		"-c", "SET statement_timeout = '1s'", "-c", "SELECT pg_is_in_recovery()", "-c", upsert)
	p.Done = time.Now()
	if err != nil {
		p.State, p.Err = Down, err.Error()
		return p
	}
	lines := strings.Fields(res.Stdout)
	switch {
	case len(lines) == 0:
		p.State, p.Err = Down, strings.TrimSpace(res.Stderr)
	case lines[0] == "t":
		p.State = Replica
	case res.ExitCode != 0 || len(lines) < 2:
		p.State, p.Err = Stalled, strings.TrimSpace(res.Stderr)
	case strings.Contains(res.Stderr, "synchronous replication"):
		p.State, p.Err = Stalled, "committed locally, not confirmed by a synchronous standby"
	default:
		at, perr := time.Parse(time.RFC3339Nano, lines[1])
		if perr != nil {
			p.State, p.Err = Stalled, "unreadable answer: "+res.Stdout
		} else {
			p.State, p.ServerAt = Writable, at
		}
	}
	return p
}

// SplitBrains finds the spans when two nodes took writes at once. A node is
// writable from its first to its last acknowledged write of a run of
// consecutive writable probes (by the node's own clock, shared by every
// container of the engine); a span of one node that overlaps a span of
// another is a split brain. since places the spans relative to the fault.
func SplitBrains(probes []Probe, since time.Time) []SplitBrain {
	type span struct {
		node     string
		from, to time.Time
	}
	byNode := map[string][]Probe{}
	for _, p := range probes {
		byNode[p.Node] = append(byNode[p.Node], p)
	}
	var spans []span
	for node, ps := range byNode {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Sent.Before(ps[j].Sent) })
		cur := -1 // the span of the current run of writable probes
		for _, p := range ps {
			if p.State != Writable {
				cur = -1
				continue
			}
			if cur < 0 {
				spans = append(spans, span{node: node, from: p.ServerAt, to: p.ServerAt})
				cur = len(spans) - 1
				continue
			}
			spans[cur].to = p.ServerAt
		}
	}
	var out []SplitBrain
	for i := range spans {
		for j := i + 1; j < len(spans); j++ {
			a, b := spans[i], spans[j]
			if a.node == b.node {
				continue
			}
			from, to := maxTime(a.from, b.from), minTime(a.to, b.to)
			if from.After(to) {
				continue
			}
			nodes := []string{a.node, b.node}
			sort.Strings(nodes)
			out = append(out, SplitBrain{From: from, To: to, Nodes: nodes, FromSec: from.Sub(since).Seconds(), ToSec: to.Sub(since).Seconds()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
