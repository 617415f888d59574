// Package apiproxy is the guard's view of the Docker engine: an HTTP proxy in
// front of the engine's socket that forwards only the read-only calls the
// guard makes — ping, version, the event stream and the container list, both
// narrowed to one cluster by a label filter — and refuses everything else
// with 403. The list's answer carries no container environment (that is in
// inspect, which is refused), so the guard never sees the cluster's
// passwords, and it can neither create, start, stop, exec into nor remove
// anything.
package apiproxy

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/pgha/pgha/pkg/topology"
)

// Policy is what the proxy allows.
type Policy struct {
	// Cluster is the one cluster the guard may see: every event and list
	// request must filter on its label.
	Cluster string
}

// endpoint is one allowed path (after the optional /v1.NN prefix) and the
// query parameters it may carry.
type endpoint struct {
	params map[string]bool
	// clusterFilter: the request must carry a label filter on the cluster.
	clusterFilter bool
}

var endpoints = map[string]endpoint{
	"/_ping":           {params: map[string]bool{}},
	"/version":         {params: map[string]bool{}},
	"/events":          {params: map[string]bool{"since": true, "until": true, "filters": true}, clusterFilter: true},
	"/containers/json": {params: map[string]bool{"all": true, "filters": true}, clusterFilter: true},
}

// versioned matches the engine's optional API version prefix.
var versioned = regexp.MustCompile(`^/v[0-9]{1,2}\.[0-9]{1,3}(/.*)$`)

// Refusal says why a request is not forwarded.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

// Check says whether a request may go to the engine. When it may, it returns
// the request's path and query in the form to forward: the query re-encoded
// from what was checked, so that the engine parses exactly what the proxy
// judged.
func (p Policy) Check(r *http.Request) (path, query string, err error) {
	refuse := func(format string, a ...any) (string, string, error) {
		return "", "", &Refusal{Reason: fmt.Sprintf(format, a...)}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return refuse("%s is not allowed: the guard only reads", r.Method)
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		return refuse("a request body is not allowed")
	}
	if r.Header.Get("Upgrade") != "" {
		// Only attach and exec hijack the connection; none is allowed.
		return refuse("a protocol upgrade is not allowed")
	}
	if r.URL.Opaque != "" || r.URL.User != nil || r.URL.Fragment != "" {
		return refuse("malformed request target")
	}
	// Judge the path as sent: no escapes, no dot segments, no empty
	// segments. No allowed endpoint needs any of them, and each is a way to
	// make the proxy and the engine read a path differently.
	raw := r.URL.EscapedPath()
	if strings.ContainsAny(raw, "%\\") || strings.Contains(raw, "//") {
		return refuse("path %q: escapes and empty segments are not allowed", raw)
	}
	for _, seg := range strings.Split(raw, "/") {
		if seg == "." || seg == ".." {
			return refuse("path %q: dot segments are not allowed", raw)
		}
	}
	rest := raw
	if m := versioned.FindStringSubmatch(raw); m != nil {
		rest = m[1]
	}
	ep, ok := endpoints[rest]
	if !ok {
		return refuse("%s %s is not allowed: the guard may only ping, read the version, watch events and list containers", r.Method, raw)
	}
	if rest != "/_ping" && r.Method != http.MethodGet {
		return refuse("%s %s is not allowed", r.Method, raw)
	}
	q, err := p.checkQuery(r.URL.RawQuery, ep)
	if err != nil {
		return "", "", err
	}
	return raw, q, nil
}

// checkQuery allows only the endpoint's parameters, each once, and for
// events and the container list a filter on the cluster's label.
func (p Policy) checkQuery(raw string, ep endpoint) (string, error) {
	refuse := func(format string, a ...any) (string, error) {
		return "", &Refusal{Reason: fmt.Sprintf(format, a...)}
	}
	if strings.Contains(raw, ";") {
		return refuse("query %q: ';' is not allowed", raw)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return refuse("query %q: %v", raw, err)
	}
	out := url.Values{}
	for k, vs := range vals {
		if !ep.params[k] {
			return refuse("query parameter %q is not allowed here", k)
		}
		if len(vs) != 1 {
			return refuse("query parameter %q given %d times", k, len(vs))
		}
		out.Set(k, vs[0])
	}
	if ep.clusterFilter {
		want := topology.LabelCluster + "=" + p.Cluster
		args, err := filters.FromJSON(vals.Get("filters"))
		if err != nil {
			return refuse("filters: %v", err)
		}
		// The engine requires every label filter to match: one on the
		// cluster confines the answer to the cluster's containers.
		if p.Cluster == "" || !slices.Contains(args.Get("label"), want) {
			return refuse("events and container lists must filter on label %s", want)
		}
		enc, err := filters.ToJSON(args)
		if err != nil {
			return refuse("filters: %v", err)
		}
		out.Set("filters", enc)
	}
	return out.Encode(), nil
}
