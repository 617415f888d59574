package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/jackc/pgx/v5"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func connect(t *testing.T, port int, password string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", password, port))
	if err != nil {
		t.Fatalf("connecting to 127.0.0.1:%d: %v", port, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// The seed-shaped cluster: one primary (the bootstrap leader), every replica
// streaming, recovery state agreeing, replication working, the etcd keys in
// place, the object store answering over TLS, up idempotent, down -v complete.
func TestUpBuildsAWorkingCluster(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 3)
	r := c.up(t)
	for _, want := range []string{"etcd ready: 3 members healthy", "patroni2 is the primary", "bucket pgbackrest created"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("up's progress lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, c.name+"-patroni2") {
		t.Errorf("up's summary lacks the containers:\n%s", r.stdout)
	}
	ctx := context.Background()
	sec, store := c.secrets(t)

	// Patroni REST: patroni2 primary, the others streaming replicas.
	for _, n := range c.topo.Patroni {
		st, err := c.access(t).Patroni(ctx, n.Name)
		if err != nil {
			t.Fatalf("%s REST: %v", n.Name, err)
		}
		if n.Name == "patroni2" {
			if !st.Leading() {
				t.Errorf("patroni2 = %s/%s, want the running primary", st.Role, st.State)
			}
		} else if !st.Streaming() {
			t.Errorf("%s = %s/%s/%s, want a streaming replica", n.Name, st.Role, st.State, st.ReplicationState)
		}
	}

	// PostgreSQL through pgx: recovery state and replication of a row.
	primary, _ := c.topo.PatroniNode("patroni2")
	pc := connect(t, primary.PGPort, sec.SuperuserPassword)
	var inRecovery bool
	if err := pc.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Fatalf("primary pg_is_in_recovery = %v, %v", inRecovery, err)
	}
	marker := fmt.Sprintf("row-%d", time.Now().UnixNano())
	if _, err := pc.Exec(ctx, "CREATE TABLE e2e_marker(v text); INSERT INTO e2e_marker VALUES ('"+marker+"')"); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.topo.Patroni {
		if n.Name == "patroni2" {
			continue
		}
		rc := connect(t, n.PGPort, sec.SuperuserPassword)
		if err := rc.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
			t.Errorf("%s pg_is_in_recovery = %v, %v; want true", n.Name, inRecovery, err)
		}
		eventually(t, 10*time.Second, n.Name+" reads the row written on the primary", func() error {
			var got string
			err := rc.QueryRow(ctx, "SELECT v FROM e2e_marker").Scan(&got)
			if err == nil && got != marker {
				err = fmt.Errorf("read %q", got)
			}
			return err
		})
	}

	// etcd: Patroni's keys.
	etcd, err := c.access(t).Etcd()
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := etcd.Get(ectx, c.topo.KeyPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, kv := range resp.Kvs {
		keys[strings.TrimPrefix(string(kv.Key), c.topo.KeyPrefix())] = true
	}
	for _, want := range []string{"initialize", "leader", "config", "members/patroni1", "members/patroni2", "members/patroni3"} {
		if !keys[want] {
			t.Errorf("etcd lacks %s%s; has %v", c.topo.KeyPrefix(), want, keys)
		}
	}

	// Object store: an authenticated S3 request over TLS succeeds, a wrong key fails.
	s3, err := c.access(t).S3()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s3.BucketExists(ctx, "pgbackrest"); err != nil || !ok {
		t.Errorf("bucket pgbackrest: exists=%v err=%v", ok, err)
	}
	badAcc := c.access(t)
	badAcc.Creds.S3SecretKey = "wrong-secret-key"
	bad, _ := badAcc.S3()
	if _, err := bad.ListBuckets(ctx); err == nil {
		t.Error("the object store accepted a wrong secret key")
	}

	// Secrets are random and private.
	if info, err := os.Stat(store.Dir + "/secrets.json"); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("secrets.json mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	if len(sec.SuperuserPassword) < 20 || strings.Contains(strings.ToLower(sec.SuperuserPassword), "password") {
		t.Errorf("weak superuser password %q", sec.SuperuserPassword)
	}

	// up again changes nothing.
	before := containerIDs(t, c.name)
	r = c.up(t)
	if !strings.Contains(r.stderr, "already up and ready; nothing changed") {
		t.Errorf("second up did not say it changed nothing:\n%s", r.stderr)
	}
	if after := containerIDs(t, c.name); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("second up changed containers: %v -> %v", before, after)
	}

	// down -v leaves nothing labelled with the cluster, nor its secrets.
	mustPgha(t, "down", "-v", "--name", c.name)
	if cs, ns, vs := c.resources(t); cs+ns+vs != 0 {
		t.Errorf("after down -v: %d containers, %d networks, %d volumes left", cs, ns, vs)
	}
	if _, err := os.Stat(store.Dir); !os.IsNotExist(err) {
		t.Errorf("secrets directory %s still exists", store.Dir)
	}
	r = mustPgha(t, "down", "-v", "--name", c.name)
	if !strings.Contains(r.stderr, "Nothing to remove") {
		t.Errorf("second down: %s", r)
	}
	r = pgha(t, nil, "status", "--name", c.name)
	if r.code == 0 || !strings.Contains(r.stderr, fmt.Sprintf("cluster %q does not exist", c.name)) {
		t.Errorf("status of a removed cluster: %s", r)
	}
}

func containerIDs(t *testing.T, name string) map[string]string {
	t.Helper()
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: clusterFilter(name)})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, c := range cs {
		ids[c.Names[0]] = c.ID + " " + c.State
	}
	return ids
}

// A stopped or removed container shows in status; up completes the cluster
// from the data it kept.
func TestUpCompletesAPartialCluster(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 2).withoutRouter()
	c.up(t)
	ctx := context.Background()
	replica := c.name + "-patroni1"
	etcd3 := c.name + "-etcd3"
	if err := docker.ContainerKill(ctx, replica, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	if err := docker.ContainerRemove(ctx, etcd3, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	st := c.status(t)
	problems := strings.Join(st.Problems, "\n")
	if !strings.Contains(problems, "container "+replica+" has exited with code 137") || !strings.Contains(problems, "container "+etcd3+" is missing") {
		t.Errorf("status problems do not name the stopped and missing containers:\n%s", problems)
	}
	r := c.up(t)
	if !strings.Contains(r.stderr, "Created network") || !strings.Contains(r.stderr, "1 replicas streaming") {
		t.Errorf("up did not complete the cluster:\n%s", r.stderr)
	}
	st = c.status(t)
	if len(st.Problems) != 0 {
		t.Errorf("problems after up: %v", st.Problems)
	}
	roles := map[string]string{}
	for _, n := range st.Nodes {
		roles[n.Node] = n.Role
	}
	if roles["patroni2"] != "primary" || roles["patroni1"] != "replica" {
		t.Errorf("roles after up: %v", roles)
	}
}

// A host port in use: refused before anything is created, naming the port.
func TestUpRefusesABusyPort(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 3)
	busy := c.topo.Patroni[1].PGPort
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", busy))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := pgha(t, nil, c.upArgs()...)
	if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("host port %d (patroni2 PostgreSQL) is already in use", busy)) {
		t.Fatalf("up with a busy port: %s", r)
	}
	if cs, ns, vs := c.resources(t); cs+ns+vs != 0 {
		t.Errorf("a refused up created %d containers, %d networks, %d volumes", cs, ns, vs)
	}
	store, _ := secretsStore(t, c.name)
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("a refused up wrote secrets to %s", store)
	}
}

// Names the cluster needs, taken by a container and a network pgha did not
// make: refused, nothing created, and the foreign ones left untouched.
func TestUpRefusesForeignNames(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 3)
	ctx := context.Background()
	foreign := c.name + "-etcd2"
	created, err := docker.ContainerCreate(ctx, &container.Config{Image: images.OfflineBaseRef, Cmd: []string{"sleep", "600"}}, nil, nil, nil, foreign)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = docker.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	})
	nw, err := docker.NetworkCreate(ctx, c.topo.NetworkName(), network.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = docker.NetworkRemove(context.Background(), nw.ID) })

	r := pgha(t, nil, c.upArgs()...)
	for _, want := range []string{
		fmt.Sprintf("container %q exists and was not created by pgha", foreign),
		fmt.Sprintf("network %q exists and was not created by pgha", c.topo.NetworkName()),
		"nothing was changed",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("up's error lacks %q: %s", want, r)
		}
	}
	if r.code != 1 {
		t.Errorf("exit code %d, want 1", r.code)
	}
	if cs, ns, vs := c.resources(t); cs+ns+vs != 0 {
		t.Errorf("a refused up created %d containers, %d networks, %d volumes", cs, ns, vs)
	}
	// down must not touch them either.
	mustPgha(t, "down", "-v", "--name", c.name)
	if _, err := docker.ContainerInspect(ctx, created.ID); err != nil {
		t.Errorf("the foreign container is gone: %v", err)
	}
	if _, err := docker.NetworkInspect(ctx, nw.ID, network.InspectOptions{}); err != nil {
		t.Errorf("the foreign network is gone: %v", err)
	}
}

// Bad input that never reaches the engine.
func TestBadInput(t *testing.T) {
	parallel(t)
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	if err := os.WriteFile(bad, []byte("name: x\netcd:\n  - name: etcd1\n    clientPort: 2379\n    peers: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := pgha(t, nil, "up", "-f", bad)
	if r.code != 1 || !strings.Contains(r.stderr, `line 5: unknown field "peers" in an etcd member`) {
		t.Errorf("unknown field: %s", r)
	}
	invalid := dir + "/invalid.yaml"
	if err := os.WriteFile(invalid, []byte("name: x\netcd: []\npatroni:\n  - {name: p1, pgPort: 0, restPort: 8008}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = pgha(t, nil, "up", "-f", invalid)
	for _, want := range []string{"etcd: at least one member is needed", "patroni[0].pgPort 0: not a valid port"} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("invalid values: want %q in %s", want, r)
		}
	}
	r = pgha(t, []string{"DOCKER_HOST=unix:///tmp/pgha-no-such-engine.sock"}, "status")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach the Docker engine at unix:///tmp/pgha-no-such-engine.sock") {
		t.Errorf("unreachable engine: %s", r)
	}
	r = pgha(t, nil, "status", "--name", "e2e-never-made")
	if r.code != 1 || !strings.Contains(r.stderr, `cluster "e2e-never-made" does not exist`) {
		t.Errorf("unknown cluster: %s", r)
	}
	r = pgha(t, nil, "up", "--etcd", "0")
	if r.code != 2 || !strings.Contains(r.stderr, "at least 1 etcd member") {
		t.Errorf("--etcd 0: %s", r)
	}
}

// examples/five-node.yaml: 1 primary and 4 streaming replicas.
func TestFiveNodeExample(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 5)
	five, _, err := topology.LoadFile("../../examples/five-node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example is the generated 3+5 topology shifted by 100, so shifting it
	// onto the free ports this test found is a matter of offsets.
	offset := c.topo.Etcd[0].ClientPort - five.Etcd[0].ClientPort
	five.ShiftPorts(offset)
	five.Name = c.name
	if fmt.Sprint(five) != fmt.Sprint(c.topo) {
		t.Fatalf("examples/five-node.yaml is not the generated 3+5 topology:\n%v\n%v", five, c.topo)
	}
	r := mustPgha(t, "up", "-f", "../../examples/five-node.yaml", "--name", c.name, "--port-offset", fmt.Sprint(offset), "--timeout", "3m")
	if !strings.Contains(r.stderr, "4 replicas streaming") {
		t.Errorf("five-node up: %s", r.stderr)
	}
	primaries := 0
	for _, n := range c.status(t).Nodes {
		if n.Service == topology.RolePatroni && n.Role == clients.RolePrimary {
			primaries++
		}
	}
	if primaries != 1 {
		t.Errorf("%d primaries", primaries)
	}
}

func secretsStore(t *testing.T, name string) (string, error) {
	t.Helper()
	return stateDir + "/" + name, nil
}

// Ctrl-C during up: exit 130, then up completes the cluster and down -v
// removes everything.
func TestInterruptedUpResumes(t *testing.T) {
	parallel(t)
	c := newCluster(t, 3, 2).withoutRouter()
	cmd := exec.Command(pghaBin, c.upArgs()...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Interrupt once the containers exist and the bootstrap is under way.
	eventually(t, 2*time.Minute, "up to start the bootstrap leader", func() error {
		select {
		case err := <-exited: // an up that failed before: say why at once
			t.Fatalf("up ended before the bootstrap (%v):\n%s", err, stderr.String())
		default:
		}
		if !strings.Contains(stderr.String(), "Bootstrapping") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted up: %v, want exit code 130\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("no word of the interrupt:\n%s", stderr.String())
	}
	r := c.up(t)
	if !strings.Contains(r.stderr, "1 replicas streaming") {
		t.Errorf("up after the interrupt:\n%s", r.stderr)
	}
	mustPgha(t, "down", "-v", "--name", c.name)
	if cs, ns, vs := c.resources(t); cs+ns+vs != 0 {
		t.Errorf("after down -v: %d containers, %d networks, %d volumes left", cs, ns, vs)
	}
}

// syncBuffer is a buffer that a running command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
