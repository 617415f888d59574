package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/faults"
)

// ArchiveReport says whether WAL archiving caught up after a fault that
// disturbed it: every segment from the one in use before the fault to the
// one closed after the heal must be in the repository.
type ArchiveReport struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Segments int    `json:"segments"`
	// Missing are segments of that range the repository lacks.
	Missing []string `json:"missing"`
	// FailedDuring is how often archive_command failed meanwhile
	// (pg_stat_archiver.failed_count): proof that the fault disturbed it.
	FailedDuring int64 `json:"failedDuring"`
	// WaitingAtHeal counts the closed segments not yet archived when the
	// fault was healed (archive_command stalled or failed meanwhile): proof
	// that the fault held archiving up.
	WaitingAtHeal int `json:"waitingAtHeal"`
	// CaughtUpSec is the time from the heal until the last segment was archived.
	CaughtUpSec float64 `json:"caughtUpSeconds"`
}

// archiveState is what pg_stat_archiver and the WAL position say on the primary.
type archiveState struct {
	segment  string
	failed   int64
	archived string
}

func readArchiveState(ctx context.Context, conn *pgx.Conn) (archiveState, error) {
	var st archiveState
	var archived *string
	err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_current_wal_lsn()), failed_count, last_archived_wal FROM pg_stat_archiver`).Scan(&st.segment, &st.failed, &archived)
	if archived != nil {
		st.archived = *archived
	}
	return st, err
}

// switchWAL closes the primary's current segment (after a commit record, so
// that there is WAL to close) and returns its name.
func switchWAL(ctx context.Context, conn *pgx.Conn) (string, error) {
	if _, err := conn.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		return "", err
	}
	var seg string
	err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_switch_wal())`).Scan(&seg)
	return seg, err
}

// checkArchive closes a segment on the primary, waits until it is archived,
// and lists the repository's archive for every segment from before.from on.
func checkArchive(ctx context.Context, acc clients.Access, ft faults.Target, primary string, before, atHeal archiveState, healAt time.Time, timeout time.Duration) (ArchiveReport, error) {
	rep := ArchiveReport{From: before.segment, Missing: []string{}}
	if atHeal.segment != "" && atHeal.archived != "" && atHeal.archived < atHeal.segment {
		// The segments after the last archived one, up to the one in use.
		if waiting, err := segmentRange(atHeal.archived, atHeal.segment, 16<<20); err == nil {
			rep.WaitingAtHeal = len(waiting) - 2
		}
	}
	conn, err := acc.Connect(ctx, primary)
	if err != nil {
		return rep, fmt.Errorf("connecting to %s: %v", primary, clients.PGErr(err))
	}
	defer closeConn(ctx, conn)
	if rep.To, err = switchWAL(ctx, conn); err != nil {
		return rep, fmt.Errorf("switching WAL on %s: %v", primary, clients.PGErr(err))
	}
	var last archiveState
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if last, err = readArchiveState(wctx, conn); err == nil && last.archived >= rep.To {
			break
		}
		select {
		case <-wctx.Done():
			return rep, fmt.Errorf("segment %s not archived within %s after the heal (last archived: %s)", rep.To, timeout, last.archived)
		case <-time.After(100 * time.Millisecond):
		}
	}
	rep.CaughtUpSec = time.Since(healAt).Seconds()
	rep.FailedDuring = last.failed - before.failed
	var segSize int64
	if err := conn.QueryRow(ctx, `SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'`).Scan(&segSize); err != nil {
		return rep, fmt.Errorf("reading wal_segment_size: %v", clients.PGErr(err))
	}
	want, err := segmentRange(rep.From, rep.To, segSize)
	if err != nil {
		return rep, err
	}
	rep.Segments = len(want)
	have, err := repoSegments(ctx, ft, primary)
	if err != nil {
		return rep, err
	}
	for _, s := range want {
		if !have[s] {
			rep.Missing = append(rep.Missing, s)
		}
	}
	return rep, nil
}

// segmentRange lists the WAL segment names from first to last, inclusive,
// on first's timeline.
func segmentRange(first, last string, segSize int64) ([]string, error) {
	parse := func(s string) (tl, log, seg uint64, err error) {
		if len(s) != 24 {
			return 0, 0, 0, fmt.Errorf("not a WAL segment name: %q", s)
		}
		if tl, err = strconv.ParseUint(s[:8], 16, 32); err == nil {
			if log, err = strconv.ParseUint(s[8:16], 16, 32); err == nil {
				seg, err = strconv.ParseUint(s[16:], 16, 32)
			}
		}
		return tl, log, seg, err
	}
	tl, log, seg, err := parse(first)
	if err != nil {
		return nil, err
	}
	tl2, log2, seg2, err := parse(last)
	if err != nil {
		return nil, err
	}
	if tl2 != tl {
		return nil, fmt.Errorf("the timeline changed from %s to %s during the fault", first, last)
	}
	perLog := uint64(0x100000000 / segSize)
	var out []string
	for n := 0; log < log2 || (log == log2 && seg <= seg2); n++ {
		if n > 100000 {
			return nil, fmt.Errorf("too many segments from %s to %s", first, last)
		}
		out = append(out, fmt.Sprintf("%08X%08X%08X", tl, log, seg))
		if seg++; seg == perLog {
			seg, log = 0, log+1
		}
	}
	return out, nil
}

var segmentFile = regexp.MustCompile(`([0-9A-F]{24})-[0-9a-f]{40}`)

// repoSegments lists the WAL segments in the repository's archive, with
// pgBackRest inside the node's container.
func repoSegments(ctx context.Context, ft faults.Target, node string) (map[string]bool, error) {
	eng, name := ft.Backend.Where(ft.Topo, node)
	stanza := ft.Topo.Stanza()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := eng.Exec(lctx, name, engine.ExecOptions{}, "pgbackrest", "--stanza="+stanza, "repo-ls", "archive/"+stanza, "--recurse", "--output=json")
	if err == nil {
		err = res.Err("pgbackrest repo-ls in " + name)
	}
	if err != nil {
		return nil, fmt.Errorf("listing the repository's archive: %w", err)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal([]byte(res.Stdout), &entries); err != nil {
		return nil, fmt.Errorf("reading pgbackrest repo-ls: %v", err)
	}
	have := map[string]bool{}
	for path := range entries {
		if m := segmentFile.FindStringSubmatch(path); m != nil {
			have[m[1]] = true
		}
	}
	return have, nil
}
