package failover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/poll"
)

// Outcome of one insert.
type Outcome int

const (
	// Acked: the commit was confirmed to the client.
	Acked Outcome = iota
	// Failed: the insert certainly did not commit (never sent, or refused).
	Failed
	// Unknown: an error or timeout after the commit was sent; it may or may not have committed.
	Unknown
)

// Write is one insert the writer attempted.
type Write struct {
	ID      int64
	Sent    time.Time
	Done    time.Time
	Outcome Outcome
}

// Writer inserts unique ids continuously through a multi-host connection with
// target_session_attrs=read-write, reconnecting after any error, and records
// the outcome of every insert.
type Writer struct {
	dsn   string
	table string
	// Interval between inserts.
	Interval time.Duration
	// Timeout of one insert; past it the outcome is unknown.
	Timeout time.Duration

	mu     sync.Mutex
	writes []Write
}

// NewWriter writes into table through every Patroni node of the cluster.
func NewWriter(acc clients.Access, table string) *Writer {
	dsn := acc.MultiHostURL("sslmode=disable", "connect_timeout=1", "application_name=pgha-writer")
	return &Writer{dsn: dsn, table: table, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second}
}

// Setup creates the writer's table on the primary.
func (w *Writer) Setup(ctx context.Context) error {
	conn, err := w.connect(ctx, nil)
	if err != nil {
		return fmt.Errorf("connecting to the primary: %w", err)
	}
	defer closeConn(ctx, conn)
	_, err = conn.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())", pgx.Identifier{w.table}.Sanitize()))
	return err
}

// connect opens a session on the read-write node. A context that ends during
// a statement closes the socket instead of sending a cancel request: a
// cancelled wait for synchronous replication would report a commit that was
// never replicated as a success.
func (w *Writer) connect(ctx context.Context, syncWarning *bool) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(w.dsn)
	if err != nil {
		return nil, err
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if syncWarning != nil && strings.Contains(n.Message, "synchronous replication") {
			*syncWarning = true
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return pgx.ConnectConfig(cctx, cfg)
}

// Run writes until ctx ends.
func (w *Writer) Run(ctx context.Context) {
	var conn *pgx.Conn
	var syncWarning bool
	defer func() {
		if conn != nil {
			closeConn(ctx, conn)
		}
	}()
	insert := fmt.Sprintf("INSERT INTO %s (id) VALUES ($1)", pgx.Identifier{w.table}.Sanitize())
	tick := time.NewTicker(w.Interval)
	defer tick.Stop()
	var id int64
	for ctx.Err() == nil {
		id++
		wr := Write{ID: id, Sent: time.Now()}
		if conn == nil {
			var err error
			if conn, err = w.connect(ctx, &syncWarning); err != nil {
				conn = nil
				wr.Done, wr.Outcome = time.Now(), Failed // never sent
				w.record(wr)
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
				continue
			}
		}
		syncWarning = false
		ictx, cancel := context.WithTimeout(ctx, w.Timeout)
		_, err := conn.Exec(ictx, insert, id)
		cancel()
		wr.Done = time.Now()
		var pgErr *pgconn.PgError
		switch {
		case err == nil && !syncWarning:
			wr.Outcome = Acked
		case err == nil: // committed locally, replication not confirmed
			wr.Outcome = Unknown
		case errors.As(err, &pgErr) || pgconn.SafeToRetry(err):
			// The server refused the statement, or it was never sent.
			wr.Outcome = Failed
		default:
			wr.Outcome = Unknown
		}
		if err != nil {
			closeConn(ctx, conn)
			conn = nil
		}
		w.record(wr)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func (w *Writer) record(wr Write) {
	w.mu.Lock()
	w.writes = append(w.writes, wr)
	w.mu.Unlock()
}

// Writes returns what the writer did so far.
func (w *Writer) Writes() []Write {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Write(nil), w.writes...)
}

// Gap returns the write unavailability around t: the longest interval
// between two consecutive acknowledged writes where the later one finished
// after t. ok is false until a write sent after t has been acknowledged.
func Gap(writes []Write, t time.Time) (gap time.Duration, before, after time.Time, ok bool) {
	var prev time.Time
	for _, w := range writes {
		if w.Outcome != Acked {
			continue
		}
		if w.Done.After(t) && !prev.IsZero() && w.Done.Sub(prev) > gap {
			gap, before, after = w.Done.Sub(prev), prev, w.Done
		}
		if w.Sent.After(t) {
			ok = true
		}
		prev = w.Done
	}
	return gap, before, after, ok
}

// Audit compares what the writer sent with what the primary holds.
type Audit struct {
	Acked   int     `json:"acked"`
	Failed  int     `json:"failed"`
	Unknown int     `json:"unknown"`
	Present int     `json:"present"`
	Lost    []int64 `json:"lost"`    // acknowledged but missing
	Phantom []int64 `json:"phantom"` // present but never sent
}

// AuditWrites reads every id from the table on the primary and checks that
// every acknowledged id is there and nothing else is.
func (w *Writer) AuditWrites(ctx context.Context) (Audit, error) {
	var a Audit
	// Right after a fault the primary may still be settling (a demoted
	// node restarting, a promotion under way, a busy machine): read from
	// whichever node takes writes, for a while.
	var present map[int64]bool
	var readErr error
	_ = poll.For(ctx, 30*time.Second, 500*time.Millisecond, func(ctx context.Context) (bool, error) {
		present, readErr = w.ids(ctx)
		return readErr == nil, nil
	})
	if readErr != nil {
		return a, readErr
	}
	a.Present = len(present)
	sent := map[int64]bool{}
	for _, wr := range w.Writes() {
		sent[wr.ID] = true
		switch wr.Outcome {
		case Acked:
			a.Acked++
			if !present[wr.ID] {
				a.Lost = append(a.Lost, wr.ID)
			}
		case Failed:
			a.Failed++
		case Unknown:
			a.Unknown++
		}
	}
	for id := range present {
		if !sent[id] {
			a.Phantom = append(a.Phantom, id)
		}
	}
	return a, nil
}

// ids reads every id in the writer's table on the read-write node.
func (w *Writer) ids(ctx context.Context) (map[int64]bool, error) {
	conn, err := w.connect(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to the new primary: %w", err)
	}
	defer closeConn(ctx, conn)
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT id FROM %s", pgx.Identifier{w.table}.Sanitize()))
	if err != nil {
		return nil, err
	}
	present := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		present[id] = true
	}
	return present, rows.Err()
}

// Drop removes the writer's table.
func (w *Writer) Drop(ctx context.Context) error {
	conn, err := w.connect(ctx, nil)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	_, err = conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s", pgx.Identifier{w.table}.Sanitize()))
	return err
}

// closeConn closes a session within a few seconds, also after ctx ended.
func closeConn(ctx context.Context, conn *pgx.Conn) {
	cctx, cancel := poll.Detached(ctx, 3*time.Second)
	defer cancel()
	_ = conn.Close(cctx)
}
