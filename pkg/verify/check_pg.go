package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// nodeProbe is what a node says through Patroni and PostgreSQL.
type nodeProbe struct {
	node       topology.PGNode
	patroni    clients.PatroniState
	patroniErr error
	patroniDur time.Duration
	conn       *pgx.Conn
	connErr    error
	inRecovery bool
	pgDur      time.Duration
}

// checkPatroniAndPostgres: every node answers; exactly one primary; every other
// node a streaming replica; one timeline; pg_is_in_recovery() agrees with
// Patroni; pg_stat_replication on the primary lists every replica streaming
// with lag under the threshold; a marker row written on the primary appears on
// every replica.
func checkPatroniAndPostgres(ctx context.Context, t Target, out *rows) {
	probes := make([]*nodeProbe, len(t.Topo.Patroni))
	var wg sync.WaitGroup
	for i, n := range t.Topo.Patroni {
		probes[i] = &nodeProbe{node: n}
		wg.Add(1)
		go func(p *nodeProbe) {
			defer wg.Done()
			start := time.Now()
			p.patroni, p.patroniErr = t.Patroni(ctx, n.Name)
			p.patroniDur = time.Since(start)
			start = time.Now()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			p.conn, p.connErr = t.Connect(cctx, n.Name)
			if p.connErr == nil {
				p.connErr = p.conn.QueryRow(cctx, "SELECT pg_is_in_recovery()").Scan(&p.inRecovery)
			}
			p.pgDur = time.Since(start)
		}(probes[i])
	}
	wg.Wait()
	defer func() {
		for _, p := range probes {
			if p.conn != nil {
				cctx, cancel := poll.Detached(ctx, 3*time.Second)
				p.conn.Close(cctx)
				cancel()
			}
		}
	}()

	// Patroni's view.
	var primary *nodeProbe
	primaries, timelines := []string{}, map[int][]string{}
	for _, p := range probes {
		c := Check{Group: "patroni", Name: p.node.Name, Duration: p.patroniDur}
		switch st := p.patroni; {
		case p.patroniErr != nil:
			c.Detail = t.why(ctx, p.node.Name, fmt.Errorf("REST API not answering on %s", t.Addr(p.node.RESTPort))).Error()
		case st.Leading():
			c.OK, c.Detail = true, fmt.Sprintf("primary, timeline %d", st.Timeline)
			primaries = append(primaries, p.node.Name)
			primary = p
		case st.Streaming():
			c.OK, c.Detail = true, fmt.Sprintf("replica streaming, timeline %d", st.Timeline)
		default:
			c.Detail = fmt.Sprintf("%s, state %s, replication %q: not a running primary or streaming replica", st.Role, st.State, st.ReplicationState)
		}
		if p.patroniErr == nil && p.patroni.Timeline > 0 {
			timelines[p.patroni.Timeline] = append(timelines[p.patroni.Timeline], p.node.Name)
		}
		out.add(c)
	}
	timed(out, "patroni", "one primary", func() (string, error) {
		if len(primaries) != 1 {
			return "", fmt.Errorf("%d primaries %v, want exactly 1", len(primaries), primaries)
		}
		return primaries[0], nil
	})
	timed(out, "patroni", "one timeline", func() (string, error) {
		if len(timelines) != 1 {
			return "", fmt.Errorf("nodes on different timelines: %v", timelines)
		}
		for tl, nodes := range timelines {
			return fmt.Sprintf("timeline %d on %s", tl, strings.Join(nodes, ", ")), nil
		}
		return "", nil
	})

	if t.Topo.SynchronousMode != topology.SyncOff && len(t.Topo.Patroni) > 1 {
		// Only a synchronous standby may take over in synchronous mode, and
		// the leader names one a loop or two after the replicas stream.
		timed(out, "patroni", "synchronous standby", func() (string, error) {
			view, err := t.Cluster(ctx)
			if err != nil {
				return "", err
			}
			sync := view.SyncStandbys()
			if len(sync) == 0 {
				return "", fmt.Errorf("synchronous mode %s but no streaming synchronous standby yet", t.Topo.SynchronousMode)
			}
			return strings.Join(sync, ", "), nil
		})
	}

	// PostgreSQL's view.
	for _, p := range probes {
		c := Check{Group: "postgres", Name: p.node.Name + " recovery state", Duration: p.pgDur}
		switch {
		case p.connErr != nil:
			c.Detail = t.why(ctx, p.node.Name, fmt.Errorf("cannot query %s: %v", t.Addr(p.node.PGPort), clients.PGErr(p.connErr))).Error()
		case p.patroniErr != nil:
			c.Detail = fmt.Sprintf("pg_is_in_recovery() = %v, but Patroni does not answer", p.inRecovery)
		case p.inRecovery == (p.patroni.Role == clients.RolePrimary):
			c.Detail = fmt.Sprintf("pg_is_in_recovery() = %v, but Patroni says %s", p.inRecovery, p.patroni.Role)
		default:
			c.OK, c.Detail = true, fmt.Sprintf("pg_is_in_recovery() = %v, agrees with Patroni (%s)", p.inRecovery, p.patroni.Role)
		}
		out.add(c)
	}
	if primary == nil || primary.conn == nil {
		out.add(Check{Group: "postgres", Name: "replication", Detail: "skipped: no reachable primary"})
		return
	}
	var replicas []*nodeProbe
	for _, p := range probes {
		if p != primary {
			replicas = append(replicas, p)
		}
	}
	timed(out, "postgres", "pg_stat_replication", func() (string, error) {
		return checkReplicationView(ctx, primary.conn, replicas, t.MaxLag)
	})
	timed(out, "postgres", "marker row replicated", func() (string, error) {
		return checkMarker(ctx, primary.conn, replicas)
	})
	timed(out, "postgres", "WAL archived to the object store", func() (string, error) {
		return clients.ArchiveCurrentWAL(ctx, primary.conn, primary.node.Name)
	})
}

// checkReplicationView reads pg_stat_replication on the primary: every replica
// listed as streaming, with replay lag at most maxLag bytes.
func checkReplicationView(ctx context.Context, conn *pgx.Conn, replicas []*nodeProbe, maxLag int64) (string, error) {
	rows, err := conn.Query(ctx, `SELECT application_name, state, COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), -1)::bigint
		FROM pg_stat_replication`)
	if err != nil {
		return "", fmt.Errorf("reading pg_stat_replication: %v", clients.PGErr(err))
	}
	type rep struct {
		state string
		lag   int64
	}
	seen := map[string]rep{}
	for rows.Next() {
		var name string
		var r rep
		if err := rows.Scan(&name, &r.state, &r.lag); err != nil {
			return "", err
		}
		seen[name] = r
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	var problems, fine []string
	for _, p := range replicas {
		r, ok := seen[p.node.Name]
		switch {
		case !ok:
			problems = append(problems, p.node.Name+" not connected")
		case r.state != "streaming":
			problems = append(problems, fmt.Sprintf("%s %s", p.node.Name, r.state))
		case r.lag > maxLag:
			problems = append(problems, fmt.Sprintf("%s lags %d bytes (max %d)", p.node.Name, r.lag, maxLag))
		default:
			fine = append(fine, fmt.Sprintf("%s lag %d B", p.node.Name, r.lag))
		}
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	if len(fine) == 0 {
		return "no replicas in the topology", nil
	}
	return "streaming: " + strings.Join(fine, ", "), nil
}

// checkMarker writes a row on the primary and waits until every reachable
// replica sees it, reporting the slowest delay.
func checkMarker(ctx context.Context, primary *pgx.Conn, replicas []*nodeProbe) (string, error) {
	id := secrets.Random(12)
	if _, err := primary.Exec(ctx, `CREATE TABLE IF NOT EXISTS pgha_verify (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return "", fmt.Errorf("creating pgha_verify on the primary: %v", clients.PGErr(err))
	}
	if _, err := primary.Exec(ctx, `INSERT INTO pgha_verify (id) VALUES ($1)`, id); err != nil {
		return "", fmt.Errorf("writing the marker row on the primary: %v", clients.PGErr(err))
	}
	written := time.Now()
	defer func() {
		cctx, cancel := poll.Detached(ctx, 3*time.Second)
		defer cancel()
		_, _ = primary.Exec(cctx, `DELETE FROM pgha_verify WHERE id = $1 OR at < now() - interval '1 hour'`, id)
	}()

	var problems []string
	var slowest time.Duration
	for _, r := range replicas {
		if r.conn == nil {
			problems = append(problems, r.node.Name+" unreachable")
			continue
		}
		d, err := waitForRow(ctx, r.conn, id, written)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", r.node.Name, err))
			continue
		}
		slowest = max(slowest, d)
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	return fmt.Sprintf("visible on %d replicas within %s", len(replicas), slowest.Round(100*time.Microsecond)), nil
}

func waitForRow(ctx context.Context, conn *pgx.Conn, id string, since time.Time) (time.Duration, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pgha_verify WHERE id = $1`, id).Scan(&n)
		if err != nil && !strings.Contains(err.Error(), "does not exist") {
			return 0, fmt.Errorf("reading the marker: %v", clients.PGErr(err))
		}
		if n == 1 {
			return time.Since(since), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("marker row not visible after %s", time.Since(since).Round(time.Millisecond))
		case <-tick.C:
		}
	}
}
