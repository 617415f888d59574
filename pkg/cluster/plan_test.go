package cluster

import (
	"encoding/json"
	"flag"
	"github.com/docker/go-connections/nat"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// What up creates for the seed topology, container by container: a change
// to any setting shows in the diff of testdata/seed.golden.json (run
// `go test ./pkg/cluster -run Golden -update` to accept it).
func TestPlanGolden(t *testing.T) {
	imgs := images.ImageSet{Etcd: images.Image{Ref: "pgha/etcd:E"}, Patroni: images.Image{Ref: "pgha/patroni:P"},
		ObjectStore: images.Image{Ref: "pgha/objectstore:O", Kind: topology.StoreVersityGW}, Guard: images.Image{Ref: "pgha/guard:G"}}
	sec := secrets.Secrets{SuperuserPassword: "SUPERUSER-PW", ReplicationPassword: "REPLICATION-PW", RESTPassword: "REST-PW",
		S3AccessKey: "S3-ACCESS", S3SecretKey: "S3-SECRET"}
	specs := Plan(topology.Seed(), imgs, sec, secrets.Store{}, "/var/run/docker.sock")
	type golden struct {
		Name, Role, Volume, Mount string
		Aliases                   []string
		Config                    *container.Config
		Host                      *container.HostConfig
		Networks                  []string
	}
	var got []golden
	for _, s := range specs {
		var nets []string
		for n := range networking(topology.Seed(), s).EndpointsConfig {
			nets = append(nets, n)
		}
		got = append(got, golden{s.Name, s.Role, s.Volume, s.Mount, s.Aliases, s.Config, s.Host, nets})
	}
	data, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "seed.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make it with -update)", err)
	}
	if string(want) != string(data) {
		t.Errorf("the planned containers differ from %s; run with -update to accept:\n%s", path, firstDiff(string(want), string(data)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n- " + al[i] + "\n+ " + bl[i]
		}
	}
	return "lengths differ"
}

// The seed's shape, checked directly: start order, names, the guard's least
// access, every port on loopback, no restart, Patroni's stop timeout and shm.
func TestPlanSeed(t *testing.T) {
	specs := Plan(topology.Seed(), images.ImageSet{Guard: images.Image{Ref: "pgha/guard:G"}}, secrets.Secrets{}, secrets.Store{}, "/run/user/1000/docker.sock")
	var order []string
	for _, s := range specs {
		order = append(order, s.Name)
		if s.Host.RestartPolicy.Name != container.RestartPolicyDisabled {
			t.Errorf("%s: restart policy %q", s.Name, s.Host.RestartPolicy.Name)
		}
		for _, bs := range s.Host.PortBindings {
			for _, b := range bs {
				if b.HostIP != "127.0.0.1" {
					t.Errorf("%s publishes on %q", s.Name, b.HostIP)
				}
			}
		}
	}
	if got := strings.Join(order, " "); got != "etcd1 etcd2 etcd3 versitygw patroni1 patroni2 patroni3 guard-proxy guard router" {
		t.Errorf("order %s", got)
	}
	for _, g := range ByRole(specs, topology.RoleGuard) {
		h := g.Host
		if !h.ReadonlyRootfs || len(h.CapDrop) != 1 || h.CapDrop[0] != "ALL" || len(h.SecurityOpt) != 1 || h.SecurityOpt[0] != "no-new-privileges:true" ||
			len(h.PortBindings) != 0 || h.Privileged || len(h.Binds) != 0 {
			t.Errorf("%s hardening: %+v", g.Name, h)
		}
	}
	// Only the proxy has the engine's socket (the engine-side path, read-only
	// at the usual place); it shares the volume of its own socket with the
	// guard, which mounts it read-only, runs as nobody and has no engine socket.
	proxy, g := specByNode(specs, topology.GuardProxyNode), specByNode(specs, topology.GuardNode)
	vol := mount.Mount{Type: mount.TypeVolume, Source: "pgha-pgha-guard-proxy-data", Target: "/run/pgha-guard"}
	if m := proxy.Host.Mounts; len(m) != 2 || m[0] != (mount.Mount{Type: mount.TypeBind, Source: "/run/user/1000/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true}) ||
		m[1] != vol || proxy.Volume != vol.Source {
		t.Errorf("proxy mounts %+v, volume %q", m, proxy.Volume)
	}
	// The guard: the proxy's socket read-only, and a volume of its own that
	// receives its etcd login (files owned by nobody).
	vol.ReadOnly = true
	if m := g.Host.Mounts; len(m) != 2 || m[0] != vol || m[1] != (mount.Mount{Type: mount.TypeVolume, Source: "pgha-pgha-guard-data", Target: topology.GuardSecretsDir}) ||
		g.Volume != "pgha-pgha-guard-data" || g.Config.User != "65534:65534" {
		t.Errorf("guard mounts %+v, volume %q, user %q", m, g.Volume, g.Config.User)
	}
	if c := proxy.Config.Cmd; strings.Join(c, " ") != "--cluster pgha --listen /run/pgha-guard/engine.sock --engine /var/run/docker.sock" {
		t.Errorf("proxy command %q", c)
	}
	if c := g.Config.Cmd; len(c) != 4 || c[0] != "--topology" || !strings.Contains(c[1], `"scope":"pg-cluster"`) {
		t.Errorf("guard command %q", c)
	}
	p2 := specByNode(specs, "patroni2")
	if *p2.Config.StopTimeout != 60 || p2.Host.ShmSize != 256<<20 || p2.Mount != topology.PatroniDataMount {
		t.Errorf("patroni2: stop %d shm %d mount %s", *p2.Config.StopTimeout, p2.Host.ShmSize, p2.Mount)
	}
	noGuard := topology.Seed()
	noGuard.Guard = false
	if n := len(ByRole(Plan(noGuard, images.ImageSet{}, secrets.Secrets{}, secrets.Store{}, ""), topology.RoleGuard)); n != 0 {
		t.Errorf("%d guard containers with guard: false", n)
	}
}

// The router: its three listeners on loopback at the topology's host ports,
// no volume, no capabilities, the generated haproxy.cfg copied in; none with
// router: false.
func TestPlanRouter(t *testing.T) {
	topo := topology.Seed()
	topo.ShiftPorts(100)
	specs := Plan(topo, images.ImageSet{Router: images.Image{Ref: "pgha/router:R"}}, secrets.Secrets{}, secrets.Store{}, "")
	rs := ByRole(specs, topology.RoleRouter)
	if len(rs) != 1 {
		t.Fatalf("%d router specs", len(rs))
	}
	r := rs[0]
	want := map[string]string{"5000/tcp": "5100", "5001/tcp": "5101", "7000/tcp": "7100"}
	for port, hp := range want {
		b := r.Host.PortBindings[nat.Port(port)]
		if len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != hp {
			t.Errorf("router %s published as %+v, want 127.0.0.1:%s", port, b, hp)
		}
	}
	if r.Volume != "" || len(r.Host.Mounts) != 0 || len(r.Host.CapDrop) != 1 || r.Host.CapDrop[0] != "ALL" || r.Config.Image != "pgha/router:R" {
		t.Errorf("router spec %+v %+v", r.Config, r.Host)
	}
	files, err := r.Files()
	if err != nil || len(files) != 1 || files[0].Name != topology.RouterConfigFile || string(files[0].Data) != topo.RouterConfig() {
		t.Errorf("router files %v %v", files, err)
	}
	off := topology.Seed()
	off.Router = false
	if n := len(ByRole(Plan(off, images.ImageSet{}, secrets.Secrets{}, secrets.Store{}, ""), topology.RoleRouter)); n != 0 {
		t.Errorf("%d router containers with router: false", n)
	}
}

// The object store's TLS files arrive owned by its user, the key private.
func TestObjectStoreFiles(t *testing.T) {
	dir := t.TempDir()
	store := secrets.Store{Cluster: "lab", Dir: dir}
	for name, data := range map[string]string{secrets.ServerCertFile: "C", secrets.ServerKeyFile: "K"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := ByRole(Plan(topology.Seed(), images.ImageSet{}, secrets.Secrets{}, store, ""), topology.RoleObjectStore)[0]
	files, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		wantMode := int64(0)
		if strings.HasSuffix(f.Name, ".key") || f.Name == topology.ObjectStoreRootFile {
			wantMode = 0o600
		}
		if f.UID != objectStoreUID || f.Mode != wantMode || !strings.HasPrefix(f.Name, "/etc/pgha/") {
			t.Errorf("%s: uid %d mode %o", f.Name, f.UID, f.Mode)
		}
	}
}

// No container's configuration carries a secret: each arrives as a file, mode
// 0600, owned by the user that reads it.
func TestPlanSecretsAreFilesOnly(t *testing.T) {
	dir := t.TempDir()
	store := secrets.Store{Cluster: "pgha", Dir: dir}
	sec, err := store.Ensure([]string{"versitygw", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureEtcdTLS([]string{"etcd1", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	imgs := images.ImageSet{Guard: images.Image{Ref: "pgha/guard:G"}, ObjectStore: images.Image{Kind: topology.StoreVersityGW}}
	specs := Plan(topology.Seed(), imgs, sec, store, "/var/run/docker.sock")
	found := map[string]bool{}
	for _, s := range specs {
		cfg, _ := json.Marshal([]any{s.Config, s.Host})
		for _, v := range sec.Values() {
			if strings.Contains(string(cfg), v) {
				t.Errorf("%s: its configuration carries a secret", s.Name)
			}
		}
		if s.Files == nil { // the guard's proxy holds no secret
			continue
		}
		files, err := s.Files()
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		for _, f := range files {
			for _, v := range sec.Values() {
				if strings.Contains(string(f.Data), v) {
					found[v] = true
					if f.Mode != 0o600 {
						t.Errorf("%s:%s carries a secret with mode %o", s.Name, f.Name, f.Mode)
					}
				}
			}
		}
		want := map[string]int{topology.RoleEtcd: topology.EtcdUID, topology.RolePatroni: topology.PostgresUID, topology.RoleObjectStore: objectStoreUID, topology.RoleGuard: guardUID}[s.Role]
		for _, f := range files {
			if f.Mode == 0o600 && f.UID != want {
				t.Errorf("%s:%s owned by %d, want %d", s.Name, f.Name, f.UID, want)
			}
		}
	}
	// Every secret a container needs reaches one (the etcd pgha user is pgha's own).
	for _, v := range []string{sec.SuperuserPassword, sec.ReplicationPassword, sec.RESTPassword, sec.S3AccessKey, sec.S3SecretKey,
		sec.PgBackRestS3AccessKey, sec.PgBackRestS3SecretKey, sec.EtcdRootPassword, sec.EtcdPatroniPassword, sec.EtcdGuardPassword} {
		if !found[v] {
			t.Errorf("a secret reaches no container")
		}
	}
	if found[sec.EtcdPGHAPassword] {
		t.Error("pgha's etcd password reaches a container")
	}
}
