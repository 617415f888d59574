package ops

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSettings(t *testing.T) {
	got, err := ParseSettings([]string{"ttl=30", "synchronous_mode=quorum", "postgresql.use_slots=false",
		"postgresql.parameters.work_mem=16MB", "postgresql.parameters.max_connections=200", "postgresql.parameters.jit=null",
		`postgresql.pg_hba=["host all all all scram-sha-256"]`, "postgresql.parameters.log_line_prefix='%m [%p] '"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Setting{{"ttl", 30}, {"synchronous_mode", "quorum"}, {"postgresql.use_slots", false},
		{"postgresql.parameters.work_mem", "16MB"}, {"postgresql.parameters.max_connections", 200}, {"postgresql.parameters.jit", nil},
		{"postgresql.pg_hba", []any{"host all all all scram-sha-256"}}, {"postgresql.parameters.log_line_prefix", "%m [%p] "}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func TestParseSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"nothing to set"}},
		{[]string{"ttl"}, []string{`"ttl": not KEY=VALUE`}},
		{[]string{"=3"}, []string{"not KEY=VALUE"}},
		{[]string{"ttl=abc", "loop_wait=-1"}, []string{`ttl: "abc" is not a whole number`, `loop_wait: "-1" is not a whole number`}},
		{[]string{"failsafe_mode=maybe"}, []string{"not true or false"}},
		{[]string{"synchronous_mode=sometimes"}, []string{"not true, false or quorum"}},
		{[]string{"tll=30"}, []string{"tll: not a key of Patroni's dynamic configuration"}},
		{[]string{"postgresql.parameters.Work-Mem=1"}, []string{"not a PostgreSQL parameter name"}},
		{[]string{"postgresql.parameters.=1"}, []string{"not a key"}},
		{[]string{"pause=true"}, []string{"pgha pause"}},
		{[]string{"ttl=30", "ttl=40"}, []string{"given twice"}},
		{[]string{"slots.x={bad"}, []string{"not valid JSON"}},
	} {
		_, err := ParseSettings(tc.args)
		if err == nil {
			t.Errorf("%v: no error", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.args, err, w)
			}
		}
	}
}

func TestPatchApplyDiff(t *testing.T) {
	current := map[string]any{"ttl": float64(20), "loop_wait": float64(1), "retry_timeout": float64(5),
		"postgresql": map[string]any{"use_slots": true, "parameters": map[string]any{"jit": "off", "wal_level": "replica"}}}
	settings := []Setting{{"ttl", 30}, {"postgresql.parameters.jit", nil}, {"postgresql.parameters.work_mem", "16MB"}}
	patch := Patch(settings)
	wantPatch := map[string]any{"ttl": 30, "postgresql": map[string]any{"parameters": map[string]any{"jit": nil, "work_mem": "16MB"}}}
	if !reflect.DeepEqual(patch, wantPatch) {
		t.Errorf("patch %v, want %v", patch, wantPatch)
	}
	after := Apply(current, settings)
	if err := Check(after); err != nil {
		t.Errorf("check: %v", err)
	}
	diff := Diff(Flatten(current), after)
	want := []Change{{"postgresql.parameters.jit", "off", nil}, {"postgresql.parameters.work_mem", nil, "16MB"}, {"ttl", float64(20), 30}}
	if !reflect.DeepEqual(diff, want) {
		t.Errorf("diff %v, want %v", diff, want)
	}
	// An unchanged value is no change, whatever its JSON type.
	if d := Diff(Flatten(current), Apply(current, []Setting{{"ttl", 20}})); len(d) != 0 {
		t.Errorf("setting ttl to its value: diff %v", d)
	}
	if _, ok := Flatten(current)["postgresql"]; ok {
		t.Error("Apply must not change current")
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"ttl": 20, "loop_wait": 1, "retry_timeout": 5}, ""},
		{map[string]any{}, ""}, // Patroni's defaults 30/10/10
		{map[string]any{"ttl": 10, "loop_wait": 1, "retry_timeout": 3}, "ttl=10: Patroni needs at least 20"},
		{map[string]any{"ttl": 20, "loop_wait": 0, "retry_timeout": 5}, "loop_wait=0"},
		{map[string]any{"ttl": 20, "loop_wait": 1, "retry_timeout": 2}, "retry_timeout=2"},
		{map[string]any{"ttl": 20, "loop_wait": 10, "retry_timeout": 10}, "loop_wait + 2×retry_timeout = 30 exceeds ttl=20"},
		{map[string]any{"ttl": float64(25), "loop_wait": float64(5), "retry_timeout": float64(10)}, ""},
	} {
		err := Check(tc.cfg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// Shows: every set key with its value, every removed key absent.
func TestShows(t *testing.T) {
	cfg := map[string]any{"ttl": 20, "postgresql": map[string]any{"parameters": map[string]any{"work_mem": "16MB"}}}
	for _, c := range []struct {
		settings []Setting
		want     bool
	}{
		{[]Setting{{"postgresql.parameters.work_mem", "16MB"}, {"ttl", 20}}, true},
		{[]Setting{{"postgresql.parameters.work_mem", "8MB"}}, false},
		{[]Setting{{"loop_wait", 1}}, false},
		{[]Setting{{"loop_wait", nil}}, true},
		{[]Setting{{"ttl", nil}}, false},
	} {
		if got := Shows(cfg, c.settings); got != c.want {
			t.Errorf("Shows(%v) = %v, want %v", c.settings, got, c.want)
		}
	}
}
