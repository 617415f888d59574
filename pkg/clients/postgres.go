package clients

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Connect opens a session on one node as the superuser.
func (a Access) Connect(ctx context.Context, node string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, a.ConnString(node))
}

// ArchiveCurrentWAL closes the primary's current WAL segment and waits until
// archive_command (pgBackRest) has stored it in the object store.
func ArchiveCurrentWAL(ctx context.Context, conn *pgx.Conn, node string) (string, error) {
	start := time.Now()
	// A switch on a segment with no WAL since the last switch does nothing
	// and names the empty current segment, which would never be archived. A
	// transaction's commit record gives the segment WAL to close and, for a
	// restore, a commit after every earlier one: recovery to a time needs one.
	if _, err := conn.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		return "", fmt.Errorf("writing a commit record on %s: %v", node, PGErr(err))
	}
	var seg string
	if err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_switch_wal())`).Scan(&seg); err != nil {
		return "", fmt.Errorf("switching WAL on %s: %v", node, PGErr(err))
	}
	for {
		var archived, failed *string
		var failures int64
		if err := conn.QueryRow(ctx, `SELECT last_archived_wal, last_failed_wal, failed_count FROM pg_stat_archiver`).Scan(&archived, &failed, &failures); err != nil {
			return "", fmt.Errorf("reading pg_stat_archiver on %s: %v", node, PGErr(err))
		}
		// Segment names sort in WAL order (timeline first).
		if archived != nil && *archived >= seg {
			return fmt.Sprintf("segment %s archived in %s", seg, time.Since(start).Round(time.Millisecond)), nil
		}
		if failed != nil && *failed >= seg {
			return "", fmt.Errorf("archive_command (pgbackrest archive-push) failed for %s on %s; its error is in the container's log", *failed, node)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("segment %s not archived within %s (last archived: %s; %d failures, the last on %s)",
				seg, time.Since(start).Round(time.Second), deref(archived), failures, deref(failed))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}

// PGErr shortens pgx's errors to what a person needs.
func PGErr(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "failed to connect") {
		msg = "connection failed: " + msg[i+2:]
	}
	return msg
}
