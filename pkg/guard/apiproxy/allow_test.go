package apiproxy

import (
	"bufio"
	"net/url"
	"strings"
	"testing"

	"net/http"

	"github.com/docker/docker/api/types/filters"
)

// request parses a raw request line as a client could send it, hostile
// bytes included (http.NewRequest would clean them up).
func request(t *testing.T, method, target string, extra string) *http.Request {
	t.Helper()
	raw := method + " " + target + " HTTP/1.1\r\nHost: docker\r\n" + extra + "\r\n"
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

func filter(kv ...string) string {
	args := filters.NewArgs()
	for i := 0; i+1 < len(kv); i += 2 {
		args.Add(kv[i], kv[i+1])
	}
	s, _ := filters.ToJSON(args)
	return url.QueryEscape(s)
}

func TestCheck(t *testing.T) {
	p := Policy{Cluster: "lab"}
	ours := filter("label", "io.pgha.cluster=lab", "label", "io.pgha.role=patroni", "type", "container")
	cases := []struct {
		name, method, target string
		extra                string
		allow                bool
		reason               string
	}{
		{"ping HEAD", "HEAD", "/_ping", "", true, ""},
		{"ping GET", "GET", "/_ping", "", true, ""},
		{"versioned ping", "GET", "/v1.41/_ping", "", true, ""},
		{"version", "GET", "/v1.41/version", "", true, ""},
		{"events of the cluster", "GET", "/v1.41/events?since=1.5&filters=" + ours, "", true, ""},
		{"list of the cluster", "GET", "/v1.41/containers/json?all=1&filters=" + ours, "", true, ""},
		{"list, legacy filter format", "GET", "/containers/json?filters=" + url.QueryEscape(`{"label":["io.pgha.cluster=lab"]}`), "", true, ""},

		{"create", "POST", "/v1.41/containers/create", "", false, "POST is not allowed"},
		{"remove", "DELETE", "/v1.41/containers/lab-patroni1?force=1", "", false, "DELETE is not allowed"},
		{"put archive", "PUT", "/v1.41/containers/x/archive?path=/", "", false, "PUT is not allowed"},
		{"inspect: every environment", "GET", "/v1.41/containers/lab-patroni1/json", "", false, "may only ping"},
		{"exec inspect", "GET", "/v1.41/exec/abc/json", "", false, "may only ping"},
		{"images", "GET", "/v1.41/images/json", "", false, "may only ping"},
		{"info", "GET", "/v1.41/info", "", false, "may only ping"},
		{"volumes", "GET", "/volumes", "", false, "may only ping"},
		{"logs", "GET", "/v1.41/containers/lab-patroni1/logs?stdout=1", "", false, "may only ping"},
		{"export", "GET", "/containers/lab-patroni1/export", "", false, "may only ping"},
		{"HEAD version", "HEAD", "/version", "", false, "HEAD /version is not allowed"},
		{"OPTIONS", "OPTIONS", "/_ping", "", false, "OPTIONS is not allowed"},
		{"CONNECT", "CONNECT", "/_ping", "", false, "CONNECT is not allowed"},

		{"dot-dot to exec", "GET", "/v1.41/containers/x/json/../../exec", "", false, "dot segments"},
		{"dot-dot to list", "GET", "/v1.41/containers/x/../json?filters=" + ours, "", false, "dot segments"},
		{"dot segment", "GET", "/v1.41/./containers/json?filters=" + ours, "", false, "dot segments"},
		{"encoded slash", "GET", "/v1.41/containers%2Fjson?filters=" + ours, "", false, "escapes"},
		{"encoded dots", "GET", "/v1.41/containers/x/%2e%2e/json", "", false, "escapes"},
		{"encoded letter", "GET", "/v1.41/%63ontainers/json?filters=" + ours, "", false, "escapes"},
		{"double slash", "GET", "//containers/json?filters=" + ours, "", false, "empty segments"},
		{"trailing slash", "GET", "/v1.41/containers/json/?filters=" + ours, "", false, "may only ping"},
		{"backslash", "GET", `/v1.41\containers\json`, "", false, "escapes"},
		{"bad version prefix", "GET", "/v1.41.1/containers/json?filters=" + ours, "", false, "may only ping"},
		{"version prefix alone", "GET", "/v1.41", "", false, "may only ping"},
		{"case", "GET", "/v1.41/Containers/json?filters=" + ours, "", false, "may only ping"},
		{"absolute-form target", "GET", "http://docker/v1.41/containers/lab/json", "", false, "may only ping"},

		{"list without a filter", "GET", "/v1.41/containers/json?all=1", "", false, "must filter on label io.pgha.cluster=lab"},
		{"list of another cluster", "GET", "/v1.41/containers/json?filters=" + filter("label", "io.pgha.cluster=other"), "", false, "must filter"},
		{"list, cluster label as a prefix", "GET", "/v1.41/containers/json?filters=" + filter("label", "io.pgha.cluster=lab-x"), "", false, "must filter"},
		{"list, label key only", "GET", "/v1.41/containers/json?filters=" + filter("label", "io.pgha.cluster"), "", false, "must filter"},
		{"list, cluster as a name filter", "GET", "/v1.41/containers/json?filters=" + filter("name", "io.pgha.cluster=lab"), "", false, "must filter"},
		{"list with sizes", "GET", "/v1.41/containers/json?size=1&filters=" + ours, "", false, `"size" is not allowed`},
		{"events without a filter", "GET", "/v1.41/events", "", false, "must filter"},
		{"events, filters twice", "GET", "/v1.41/events?filters=" + ours + "&filters=" + url.QueryEscape("{}"), "", false, "given 2 times"},
		{"events, semicolon", "GET", "/v1.41/events?since=1;filters=" + ours, "", false, "';'"},
		{"events, bad escape", "GET", "/v1.41/events?filters=%zz", "", false, "invalid URL escape"},
		{"events, filters not JSON", "GET", "/v1.41/events?filters=label", "", false, "filters:"},
		{"events, unknown parameter", "GET", "/v1.41/events?filters=" + ours + "&x=1", "", false, `"x" is not allowed`},
		{"ping with a query", "GET", "/_ping?x=1", "", false, `"x" is not allowed`},
		{"GET with a body", "GET", "/v1.41/version", "Content-Length: 4\r\n", false, "body"},
		{"upgrade", "GET", "/v1.41/version", "Connection: Upgrade\r\nUpgrade: tcp\r\n", false, "protocol upgrade"},
		{"GET, chunked body", "GET", "/v1.41/version", "Transfer-Encoding: chunked\r\n", false, "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := p.Check(request(t, tc.method, tc.target, tc.extra))
			switch {
			case tc.allow && err != nil:
				t.Errorf("refused: %v", err)
			case !tc.allow && err == nil:
				t.Errorf("allowed")
			case !tc.allow && !strings.Contains(err.Error(), tc.reason):
				t.Errorf("refused for %q, want a reason with %q", err, tc.reason)
			}
		})
	}
	if _, _, err := (Policy{}).Check(request(t, "GET", "/containers/json?filters="+filter("label", "io.pgha.cluster="), "")); err == nil {
		t.Error("a policy without a cluster allowed a list")
	}
}

// What is forwarded is what was checked: the filters re-encoded, nothing else.
func TestCheckForwardsTheCheckedQuery(t *testing.T) {
	p := Policy{Cluster: "lab"}
	path, q, err := Policy.Check(p, request(t, "GET", "/v1.41/events?since=12.5&filters="+url.QueryEscape(`{"label":["io.pgha.cluster=lab"],"event":["die"]}`), ""))
	if err != nil {
		t.Fatal(err)
	}
	vals, _ := url.ParseQuery(q)
	args, err := filters.FromJSON(vals.Get("filters"))
	if path != "/v1.41/events" || vals.Get("since") != "12.5" || err != nil || !args.ExactMatch("event", "die") || len(args.Get("label")) != 1 {
		t.Errorf("forwarded %s?%s (%v)", path, q, err)
	}
}
