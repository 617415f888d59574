package ops

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Patroni's dynamic configuration (what `patronictl edit-config` changes),
// set key by key: `ttl=30`, `postgresql.parameters.work_mem=8MB`,
// `postgresql.parameters.work_mem=null` (remove it).

// keyKind is how a known key's value is checked.
type keyKind int

const (
	kindInt keyKind = iota
	kindBool
	kindString
	kindSyncMode // a bool, or quorum
)

// dynamicKeys are Patroni's dynamic configuration keys outside
// postgresql.parameters (Patroni 4, "Dynamic Configuration Settings").
var dynamicKeys = map[string]keyKind{
	"ttl":                                   kindInt,
	"loop_wait":                             kindInt,
	"retry_timeout":                         kindInt,
	"maximum_lag_on_failover":               kindInt,
	"maximum_lag_on_syncnode":               kindInt,
	"max_timelines_history":                 kindInt,
	"primary_start_timeout":                 kindInt,
	"primary_stop_timeout":                  kindInt,
	"synchronous_mode":                      kindSyncMode,
	"synchronous_mode_strict":               kindBool,
	"synchronous_node_count":                kindInt,
	"failsafe_mode":                         kindBool,
	"check_timeline":                        kindBool,
	"member_slots_ttl":                      kindString,
	"postgresql.use_pg_rewind":              kindBool,
	"postgresql.use_slots":                  kindBool,
	"postgresql.recovery_conf":              kindString,
	"postgresql.pg_hba":                     kindString,
	"postgresql.parameters.*":               kindString,
	"postgresql.recovery_conf.*":            kindString,
	"standby_cluster.*":                     kindString,
	"slots.*":                               kindString,
	"ignore_slots":                          kindString,
	"postgresql.pg_ident":                   kindString,
	"postgresql.parameters.max_connections": kindInt,
}

// pauseKey is refused by config set: pause and resume have their own commands.
const pauseKey = "pause"

var paramName = regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)

// Setting is one KEY=VALUE: Value is nil to remove the key.
type Setting struct {
	Key   string
	Value any
}

// ParseSettings parses and checks KEY=VALUE arguments; every bad argument is
// reported at once.
func ParseSettings(args []string) ([]Setting, error) {
	if len(args) == 0 {
		return nil, errors.New("nothing to set: give KEY=VALUE, e.g. ttl=30 or postgresql.parameters.work_mem=8MB")
	}
	var out []Setting
	var errs []error
	seen := map[string]bool{}
	for _, arg := range args {
		key, raw, ok := strings.Cut(arg, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			errs = append(errs, fmt.Errorf("%q: not KEY=VALUE", arg))
			continue
		}
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: given twice", key))
			continue
		}
		seen[key] = true
		v, err := parseValue(key, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Setting{Key: key, Value: v})
	}
	return out, errors.Join(errs...)
}

// kindOf finds a key's kind: exact keys first, then the wildcard sections.
func kindOf(key string) (keyKind, error) {
	if key == pauseKey {
		return 0, errors.New("pause: use `pgha pause` and `pgha resume`")
	}
	if k, ok := dynamicKeys[key]; ok && !strings.HasSuffix(key, "*") {
		return k, nil
	}
	for pat, k := range dynamicKeys {
		prefix, ok := strings.CutSuffix(pat, "*")
		if ok && strings.HasPrefix(key, prefix) && len(key) > len(prefix) {
			if prefix == "postgresql.parameters." && !paramName.MatchString(strings.TrimPrefix(key, prefix)) {
				return 0, fmt.Errorf("%s: %q is not a PostgreSQL parameter name", key, strings.TrimPrefix(key, prefix))
			}
			return k, nil
		}
	}
	return 0, fmt.Errorf("%s: not a key of Patroni's dynamic configuration (known: %s)", key, strings.Join(knownKeys(), ", "))
}

// knownKeys lists the keys for an error message, sections as section.<name>.
func knownKeys() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(dynamicKeys)) {
		if strings.HasPrefix(k, "postgresql.parameters.") && !strings.HasSuffix(k, "*") {
			continue // a parameter with a checked type, covered by the section
		}
		out = append(out, strings.Replace(k, "*", "<name>", 1))
	}
	return out
}

// parseValue reads a value as its key's kind wants it; "null" removes the key.
func parseValue(key, raw string) (any, error) {
	kind, err := kindOf(key)
	if err != nil {
		return nil, err
	}
	raw = strings.TrimSpace(raw)
	if raw == "null" {
		return nil, nil
	}
	switch kind {
	case kindInt:
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s: %q is not a whole number ≥ 0", key, raw)
		}
		return n, nil
	case kindBool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not true or false", key, raw)
		}
		return b, nil
	case kindSyncMode:
		if raw == "quorum" {
			return raw, nil
		}
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not true, false or quorum", key, raw)
		}
		return b, nil
	}
	// A JSON list or object (pg_hba, slots) is taken as JSON; numbers and
	// booleans of PostgreSQL parameters as such (Patroni writes either).
	if strings.HasPrefix(raw, "[") || strings.HasPrefix(raw, "{") {
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return nil, fmt.Errorf("%s: %q is not valid JSON: %v", key, raw, err)
		}
		return v, nil
	}
	if n, err := strconv.Atoi(raw); err == nil {
		return n, nil
	}
	return strings.Trim(raw, `"'`), nil
}

// Patch is the PATCH /config body for settings: nested objects, nil to
// remove a key (Patroni deletes keys set to null).
func Patch(settings []Setting) map[string]any {
	patch := map[string]any{}
	for _, s := range settings {
		parts := strings.Split(s.Key, ".")
		m := patch
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = s.Value
	}
	return patch
}

// Apply returns the configuration current would become with settings,
// leaving current unchanged.
func Apply(current map[string]any, settings []Setting) map[string]any {
	flat := Flatten(current)
	for _, s := range settings {
		prefix := s.Key + "."
		for k := range flat {
			if strings.HasPrefix(k, prefix) {
				delete(flat, k)
			}
		}
		if s.Value == nil {
			delete(flat, s.Key)
		} else {
			flat[s.Key] = s.Value
		}
	}
	return flat
}

// Flatten turns nested objects into dotted keys.
func Flatten(cfg map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", cfg)
	return out
}

// Check refuses a configuration Patroni would adjust or refuse: ttl ≥ 20,
// loop_wait ≥ 1, retry_timeout ≥ 3 and loop_wait + 2·retry_timeout ≤ ttl.
func Check(flat map[string]any) error {
	get := func(k string, def int) int {
		switch v := flat[k].(type) {
		case int:
			return v
		case float64:
			return int(v)
		}
		return def
	}
	// Patroni's defaults when a key is absent.
	ttl, loop, retry := get("ttl", 30), get("loop_wait", 10), get("retry_timeout", 10)
	var errs []error
	if ttl < 20 {
		errs = append(errs, fmt.Errorf("ttl=%d: Patroni needs at least 20", ttl))
	}
	if loop < 1 {
		errs = append(errs, fmt.Errorf("loop_wait=%d: Patroni needs at least 1", loop))
	}
	if retry < 3 {
		errs = append(errs, fmt.Errorf("retry_timeout=%d: Patroni needs at least 3", retry))
	}
	if loop+2*retry > ttl {
		errs = append(errs, fmt.Errorf("loop_wait + 2×retry_timeout = %d exceeds ttl=%d: Patroni would adjust them", loop+2*retry, ttl))
	}
	return errors.Join(errs...)
}

// Change is one key that differs between two configurations.
type Change struct {
	Key string `json:"key"`
	Old any    `json:"old"`
	New any    `json:"new"`
}

// Diff lists the keys that differ between two flattened configurations,
// sorted by key; a nil Old or New means absent.
func Diff(before, after map[string]any) []Change {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var out []Change
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		o, n := before[k], after[k]
		if fmt.Sprint(o) != fmt.Sprint(n) || (o == nil) != (n == nil) {
			out = append(out, Change{Key: k, Old: o, New: n})
		}
	}
	return out
}

// Show formats a value for the diff: absent for nil.
func Show(v any) string {
	if v == nil {
		return "(absent)"
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Shows says whether a configuration (as GET /config answers it) holds
// every setting already: applying them would change nothing.
func Shows(cfg map[string]any, settings []Setting) bool {
	return len(Diff(Flatten(cfg), Apply(cfg, settings))) == 0
}
