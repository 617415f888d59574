package backup

import (
	"strings"
	"testing"
	"time"
)

// A trimmed `pgbackrest info --output=json` of pgBackRest 2.55: a full and an
// incremental backup, and another stanza that must be ignored.
const infoJSON = `[
 {"name":"other","archive":[],"backup":[],"status":{"code":1,"message":"missing stanza path"}},
 {"name":"pg-cluster",
  "db":[{"id":1,"system-id":7441234567890123456,"version":"17"}],
  "archive":[{"database":{"id":1},"id":"17-1","min":"000000010000000000000001","max":"000000010000000000000009"}],
  "backup":[
   {"label":"20261126-005933F","type":"full","prior":null,"error":false,
    "archive":{"start":"000000010000000000000006","stop":"000000010000000000000007"},
    "info":{"size":23518474,"delta":23518474,"repository":{"size":4500000,"delta":4500000}},
    "lsn":{"start":"0/6000028","stop":"0/7000088"},
    "timestamp":{"start":1795654773,"stop":1795654781}},
   {"label":"20261126-005933F_20261126-005942I","type":"incr","prior":"20261126-005933F","error":false,
    "archive":{"start":"000000010000000000000008","stop":"000000010000000000000009"},
    "info":{"size":23518474,"delta":8192,"repository":{"size":4500000,"delta":461}},
    "lsn":{"start":"0/8000028","stop":"0/9000050"},
    "timestamp":{"start":1795654782,"stop":1795654783}}],
  "status":{"code":0,"message":"ok"}}]`

func TestParse(t *testing.T) {
	r, err := Parse([]byte(infoJSON), "pg-cluster")
	if err != nil {
		t.Fatal(err)
	}
	if r.WALMin != "000000010000000000000001" || r.WALMax != "000000010000000000000009" || r.Status != "ok" || r.SystemID != 7441234567890123456 {
		t.Errorf("repo = %+v", r)
	}
	if len(r.Backups) != 2 {
		t.Fatalf("%d backups, want 2", len(r.Backups))
	}
	full, incr := r.Backups[0], r.Backups[1]
	if full.Type != Full || full.Prior != "" || full.Size != 23518474 || full.RepoSize != 4500000 || full.Duration() != 8*time.Second {
		t.Errorf("full = %+v", full)
	}
	if incr.Type != Incr || incr.Prior != full.Label || incr.RepoSize != 461 || incr.LSNStop != "0/9000050" {
		t.Errorf("incr = %+v", incr)
	}
	if _, err := Parse([]byte(infoJSON), "nope"); err == nil || !strings.Contains(err.Error(), `no stanza "nope"`) {
		t.Errorf("unknown stanza: %v", err)
	}
	if _, err := Parse([]byte("ERROR: [039]"), "pg-cluster"); err == nil {
		t.Error("garbage parsed")
	}
}

func TestWindow(t *testing.T) {
	r, _ := Parse([]byte(infoJSON), "pg-cluster")
	fullStop := time.Unix(1795654781, 0)
	latest := fullStop.Add(time.Hour)
	w, err := r.Window(latest)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Earliest.Equal(fullStop.Add(time.Second)) || w.EarliestLSN != "0/7000088" {
		t.Errorf("window = %+v", w)
	}
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{fullStop.Add(-time.Minute), "before the oldest backup finished"},
		{fullStop, "before the oldest backup finished"},
		{fullStop.Add(2 * time.Second), ""},
		{latest, ""},
		{latest.Add(time.Second), "after the newest archived WAL"},
	} {
		err := w.CheckTime(tc.at)
		if (tc.want == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "can be restored to"))) {
			t.Errorf("CheckTime(%s) = %v, want %q", tc.at, err, tc.want)
		}
	}
	for _, tc := range []struct{ lsn, current, want string }{
		{"0/6000000", "0/A000000", "before the oldest backup"},
		{"0/7000088", "0/A000000", ""},
		{"0/9FFFFFF", "0/A000000", ""},
		{"0/B000000", "0/A000000", "after the newest WAL"},
		{"0/B000000", "", ""},
		{"zz", "", "not an LSN"},
	} {
		err := w.CheckLSN(tc.lsn, tc.current)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckLSN(%s, %s) = %v, want %q", tc.lsn, tc.current, err, tc.want)
		}
	}
	if _, err := (Repo{}).Window(latest); err != ErrNoBackup {
		t.Errorf("empty repo window: %v", err)
	}
}

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]uint64{"0/0": 0, "0/5002118": 0x5002118, "1/0": 1 << 32, "A/FF": 0xA<<32 | 0xFF} {
		if got, err := ParseLSN(in); err != nil || got != want {
			t.Errorf("ParseLSN(%s) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5002118", "0/", "g/1", "0/1/2"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) accepted", bad)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 11, 25, 14, 3, 0, 0, time.UTC)
	for _, in := range []string{"2026-11-25T14:03:00Z", "2026-11-25 14:03:00Z", "2026-11-25 14:03:00+00", "2026-11-25T15:03:00+01:00", "2026-11-25 14:03:00 +0000"} {
		if got, err := ParseTime(in); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %s, %v", in, got, err)
		}
	}
	local, err := ParseTime("2026-11-25 14:03:00.25")
	if err != nil || !local.Equal(time.Date(2026, 11, 25, 14, 3, 0, 250000000, time.Local)) {
		t.Errorf("local time: %s %v", local, err)
	}
	if _, err := ParseTime("yesterday"); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("ParseTime(yesterday): %v", err)
	}
}

func TestValidType(t *testing.T) {
	for _, ok := range Types {
		if err := ValidType(ok); err != nil {
			t.Error(err)
		}
	}
	if err := ValidType("differential"); err == nil || !strings.Contains(err.Error(), "full, diff, incr") {
		t.Errorf("ValidType(differential) = %v", err)
	}
}
