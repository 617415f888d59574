// Package backup reads pgBackRest's view of a cluster's repository (the JSON of
// `pgbackrest info --output=json`) and decides what a restore may target: the
// backups, the WAL range and the recoverable window. It does no I/O.
package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Backup types pgBackRest takes.
const (
	Full = "full"
	Diff = "diff"
	Incr = "incr"
)

// Types are the valid --type values, in the order pgha lists them.
var Types = []string{Full, Diff, Incr}

// Backup is one backup set in the repository.
type Backup struct {
	Label string    `json:"label"`
	Type  string    `json:"type"`
	Start time.Time `json:"start"`
	Stop  time.Time `json:"stop"`
	// Size is the database size; RepoSize what the backup stored (compressed,
	// and for diff/incr only the changed files).
	Size     int64 `json:"size"`
	RepoSize int64 `json:"repoSize"`
	// WALStart and WALStop are the first and last WAL segments the backup
	// needs to be consistent; LSNStop is where it becomes consistent.
	WALStart string `json:"walStart"`
	WALStop  string `json:"walStop"`
	LSNStart string `json:"lsnStart"`
	LSNStop  string `json:"lsnStop"`
	// Prior is the backup an incremental or differential one depends on.
	Prior string `json:"prior,omitempty"`
}

// Duration is how long the backup took.
func (b Backup) Duration() time.Duration { return b.Stop.Sub(b.Start) }

// Repo is the repository's view of one stanza.
type Repo struct {
	Stanza  string   `json:"stanza"`
	Backups []Backup `json:"backups"`
	// WALMin and WALMax are the oldest and newest archived WAL segments.
	WALMin string `json:"walMin,omitempty"`
	WALMax string `json:"walMax,omitempty"`
	// Status is pgBackRest's word on the stanza ("ok", "no valid backups", ...).
	Status string `json:"status"`
	// SystemID is the database system identifier the stanza holds (its
	// current database): a restore must bring back that database.
	SystemID uint64 `json:"systemId,omitempty"`
}

// info is the part of `pgbackrest info --output=json` pgha reads.
type info struct {
	Name string `json:"name"`
	DB   []struct {
		ID       int    `json:"id"`
		SystemID uint64 `json:"system-id"`
	} `json:"db"`
	Archive []struct {
		Min *string `json:"min"`
		Max *string `json:"max"`
	} `json:"archive"`
	Backup []struct {
		Label   string  `json:"label"`
		Type    string  `json:"type"`
		Prior   *string `json:"prior"`
		Archive struct {
			Start string `json:"start"`
			Stop  string `json:"stop"`
		} `json:"archive"`
		Info struct {
			Size       int64 `json:"size"`
			Repository struct {
				Delta int64 `json:"delta"`
			} `json:"repository"`
		} `json:"info"`
		LSN struct {
			Start string `json:"start"`
			Stop  string `json:"stop"`
		} `json:"lsn"`
		Timestamp struct {
			Start int64 `json:"start"`
			Stop  int64 `json:"stop"`
		} `json:"timestamp"`
		Error bool `json:"error"`
	} `json:"backup"`
	Status struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
}

// Parse reads the output of `pgbackrest info --output=json` for stanza.
func Parse(data []byte, stanza string) (Repo, error) {
	var all []info
	if err := json.Unmarshal(data, &all); err != nil {
		return Repo{}, fmt.Errorf("reading pgbackrest info: %w", err)
	}
	for _, in := range all {
		if in.Name != stanza {
			continue
		}
		r := Repo{Stanza: in.Name, Status: in.Status.Message}
		for _, db := range in.DB {
			r.SystemID = db.SystemID // the last is the current one
		}
		for _, a := range in.Archive {
			if a.Min != nil && (r.WALMin == "" || *a.Min < r.WALMin) {
				r.WALMin = *a.Min
			}
			if a.Max != nil && *a.Max > r.WALMax {
				r.WALMax = *a.Max
			}
		}
		for _, b := range in.Backup {
			if b.Error {
				continue // a backup with checksum errors is not one to restore
			}
			bk := Backup{
				Label: b.Label, Type: b.Type,
				Start: time.Unix(b.Timestamp.Start, 0), Stop: time.Unix(b.Timestamp.Stop, 0),
				Size: b.Info.Size, RepoSize: b.Info.Repository.Delta,
				WALStart: b.Archive.Start, WALStop: b.Archive.Stop,
				LSNStart: b.LSN.Start, LSNStop: b.LSN.Stop,
			}
			if b.Prior != nil {
				bk.Prior = *b.Prior
			}
			r.Backups = append(r.Backups, bk)
		}
		return r, nil
	}
	return Repo{}, fmt.Errorf("pgbackrest info lists no stanza %q", stanza)
}

// Window is the span a cluster can be restored to: from the moment the oldest
// backup became consistent to the newest archived WAL.
type Window struct {
	Earliest    time.Time `json:"earliest"`
	EarliestLSN string    `json:"earliestLsn"`
	// Latest is when the newest WAL known to be archived was written; zero
	// when it is not known.
	Latest time.Time `json:"latest,omitzero"`
}

// ErrNoBackup: nothing to restore from.
var ErrNoBackup = errors.New("the repository holds no backup")

// Window returns the recoverable window; latest is the time up to which WAL
// is known to be archived (zero when unknown).
func (r Repo) Window(latest time.Time) (Window, error) {
	if len(r.Backups) == 0 {
		return Window{}, ErrNoBackup
	}
	first := r.Backups[0]
	for _, b := range r.Backups[1:] {
		if b.Stop.Before(first.Stop) {
			first = b
		}
	}
	// pgBackRest records the stop time to the second, truncated: the next
	// second is the first one surely after the backup became consistent.
	return Window{Earliest: first.Stop.Add(time.Second), EarliestLSN: first.LSNStop, Latest: latest}, nil
}

// String names the window for error messages.
func (w Window) String() string {
	latest := "the end of the archived WAL"
	if !w.Latest.IsZero() {
		latest = w.Latest.Format(time.RFC3339)
	}
	return fmt.Sprintf("%s (LSN %s) to %s", w.Earliest.Format(time.RFC3339), w.EarliestLSN, latest)
}

// CheckTime refuses a time outside the window.
func (w Window) CheckTime(t time.Time) error {
	if t.Before(w.Earliest) {
		return fmt.Errorf("%s is before the oldest backup finished; the cluster can be restored to %s", t.Format(time.RFC3339), w)
	}
	if !w.Latest.IsZero() && t.After(w.Latest) {
		return fmt.Errorf("%s is after the newest archived WAL; the cluster can be restored to %s", t.Format(time.RFC3339), w)
	}
	return nil
}

// CheckLSN refuses an LSN before the oldest backup became consistent, or
// after current (when current is known).
func (w Window) CheckLSN(lsn, current string) error {
	l, err := ParseLSN(lsn)
	if err != nil {
		return err
	}
	if first, err := ParseLSN(w.EarliestLSN); err == nil && l < first {
		return fmt.Errorf("LSN %s is before the oldest backup became consistent; the cluster can be restored to %s", lsn, w)
	}
	if cur, err := ParseLSN(current); err == nil && l > cur {
		return fmt.Errorf("LSN %s is after the newest WAL (%s); the cluster can be restored to %s", lsn, current, w)
	}
	return nil
}

// ParseLSN reads a PostgreSQL LSN such as 0/5002118.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not an LSN (like 0/5002118)", s)
	}
	return h<<32 | l, nil
}

// ParseTime reads a restore target time: RFC 3339, or "2006-01-02 15:04:05"
// with optional fraction and zone (local time when none is given).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time; use RFC 3339 (2026-11-25T14:03:00Z) or \"2026-11-25 14:03:00\"", s)
}

// ValidType refuses a backup type pgBackRest does not take.
func ValidType(t string) error {
	for _, v := range Types {
		if t == v {
			return nil
		}
	}
	return fmt.Errorf("unknown backup type %q: use %s", t, strings.Join(Types, ", "))
}
