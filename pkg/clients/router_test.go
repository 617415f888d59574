package clients

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgha/pgha/pkg/topology"
)

// HAProxy's CSV: the servers that are UP behind each listener, whatever
// the order of the columns; frontends, backends and the stats listener are
// left out; a server "UP 1/2" (checking) counts, "DOWN", "MAINT" (address
// not resolved) and "DOWN 1/2" do not.
func TestParseRouterStats(t *testing.T) {
	csv := `# pxname,svname,qcur,scur,status,weight,check_status,lastchg
stats,FRONTEND,,0,OPEN,,,
stats,BACKEND,0,0,UP,0,,1
primary,FRONTEND,,1,OPEN,,,
primary,patroni1,0,0,DOWN,1,L7STS,12
primary,patroni2,0,1,UP,1,L7OK,7
primary,patroni3,0,0,MAINT (resolution),1,,
primary,BACKEND,0,1,UP,1,,3
replicas,FRONTEND,,0,OPEN,,,
replicas,patroni1,0,0,UP 1/2,1,L7OK,9
replicas,patroni2,0,0,DOWN 1/2,1,L7STS,5
replicas,patroni3,0,0,UP,1,L7OK,40
replicas,BACKEND,0,0,UP,2,,2
`
	rb, err := ParseRouterStats(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	// Unchanged: the servers' latest change (replicas/patroni2, 5 s ago);
	// the listeners' own rows and the stats listener do not count.
	want := RouterBackends{Primary: []string{"patroni2"}, Replicas: []string{"patroni1", "patroni3"}, Unchanged: 5 * time.Second}
	if !reflect.DeepEqual(rb, want) {
		t.Errorf("got %+v, want %+v", rb, want)
	}
	if _, err := ParseRouterStats(strings.NewReader("# pxname,svname\nprimary,patroni1\n")); err == nil {
		t.Error("stats without a status column parsed")
	}
	if _, err := ParseRouterStats(strings.NewReader("")); err == nil {
		t.Error("empty stats parsed")
	}
}

// The router's URLs: its host ports, the superuser, no query unless asked.
func TestRouterURLs(t *testing.T) {
	topo := topology.Seed()
	topo.ShiftPorts(100)
	a := Access{Topo: topo, Host: "127.0.0.1", Creds: Credentials{SuperuserPassword: "pw"}}
	if got := a.RouterURL(); got != "postgres://postgres:pw@127.0.0.1:5100/postgres" {
		t.Errorf("RouterURL %s", got)
	}
	if got := a.RouterReadOnlyURL("sslmode=disable", "connect_timeout=1"); got != "postgres://postgres:pw@127.0.0.1:5101/postgres?sslmode=disable&connect_timeout=1" {
		t.Errorf("RouterReadOnlyURL %s", got)
	}
	if got := a.RouterStatsURL(); got != "http://127.0.0.1:7100/" {
		t.Errorf("RouterStatsURL %s", got)
	}
}
