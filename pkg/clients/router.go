package clients

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/topology"
)

// RouterURL is a libpq URL through the router's primary port (read-write).
// params are added to the query ("connect_timeout=1").
func (a Access) RouterURL(params ...string) string {
	return a.routerURL(a.Topo.RouterPorts.Primary, params)
}

// RouterReadOnlyURL is a libpq URL through the router's replica port.
func (a Access) RouterReadOnlyURL(params ...string) string {
	return a.routerURL(a.Topo.RouterPorts.Replicas, params)
}

func (a Access) routerURL(port int, params []string) string {
	u := fmt.Sprintf("postgres://%s:%s@%s/postgres", topology.SuperUser, a.Creds.SuperuserPassword, a.Addr(port))
	if len(params) > 0 {
		u += "?" + strings.Join(params, "&")
	}
	return u
}

// WhoAmI asks a session whether it is in recovery and on which node: the
// container's host name is the node's name (superuser only).
const WhoAmI = "SELECT pg_is_in_recovery(), btrim(pg_read_file('/etc/hostname'), E' \\n')"

// RouterStatsURL is the router's stats page.
func (a Access) RouterStatsURL() string { return "http://" + a.Addr(a.Topo.RouterPorts.Stats) + "/" }

// ConnectRouter opens a session through the router's primary port, or its
// replica port when readOnly.
func (a Access) ConnectRouter(ctx context.Context, readOnly bool) (*pgx.Conn, error) {
	u := a.RouterURL("sslmode=disable", "connect_timeout=3", "application_name=pgha")
	if readOnly {
		u = a.RouterReadOnlyURL("sslmode=disable", "connect_timeout=3", "application_name=pgha")
	}
	return pgx.Connect(ctx, u)
}

// RouterBackends is what the router's stats page says: which nodes each
// listener sends sessions to now.
type RouterBackends struct {
	// Primary and Replicas are the nodes whose health check passes.
	Primary  []string `json:"primary"`
	Replicas []string `json:"replicas"`
	// Unchanged is how long no server behind either listener went up or
	// down (HAProxy's lastchg, in whole seconds: rounded down).
	Unchanged time.Duration `json:"-"`
}

// RouterStats reads the router's stats page (CSV) and lists the nodes that
// are up behind each listener.
func (a Access) RouterStats(ctx context.Context) (RouterBackends, error) {
	var rb RouterBackends
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.RouterStatsURL()+";csv", nil)
	if err != nil {
		return rb, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rb, fmt.Errorf("router stats page %s not answering: %w", a.RouterStatsURL(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rb, fmt.Errorf("router stats page %s: %s", a.RouterStatsURL(), resp.Status)
	}
	return ParseRouterStats(resp.Body)
}

// ParseRouterStats reads HAProxy's CSV statistics (the header line starts
// with "# pxname,svname,...") and lists the servers that are UP in the
// primary and replicas listeners.
func ParseRouterStats(r io.Reader) (RouterBackends, error) {
	rb := RouterBackends{Primary: []string{}, Replicas: []string{}}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return rb, fmt.Errorf("reading the router's stats: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimPrefix(h, "# ")] = i
	}
	px, sv, st := col["pxname"], col["svname"], col["status"]
	lastchg, hasLastchg := col["lastchg"]
	unchanged := time.Duration(-1)
	if _, ok := col["status"]; !ok {
		return rb, fmt.Errorf("the router's stats have no status column")
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rb, fmt.Errorf("reading the router's stats: %w", err)
		}
		if len(rec) <= st || rec[sv] == "FRONTEND" || rec[sv] == "BACKEND" {
			continue
		}
		if rec[px] != "primary" && rec[px] != "replicas" {
			continue
		}
		if hasLastchg && len(rec) > lastchg {
			if secs, err := strconv.Atoi(rec[lastchg]); err == nil && (unchanged < 0 || time.Duration(secs)*time.Second < unchanged) {
				unchanged = time.Duration(secs) * time.Second
			}
		}
		// "UP", or "UP 1/2" while a check is in progress.
		if !strings.HasPrefix(rec[st], "UP") {
			continue
		}
		switch rec[px] {
		case "primary":
			rb.Primary = append(rb.Primary, rec[sv])
		case "replicas":
			rb.Replicas = append(rb.Replicas, rec[sv])
		}
	}
	rb.Unchanged = max(unchanged, 0)
	return rb, nil
}
