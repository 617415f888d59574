package topology

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The seed table of DESIGN.md §1.
func TestSeedMatchesTheGuide(t *testing.T) {
	c := Seed()
	if c.Name != "pgha" || c.Scope != "pg-cluster" || c.Namespace != "/service" || c.BootstrapLeader != "patroni2" {
		t.Fatalf("seed identity = %q %q %q %q", c.Name, c.Scope, c.Namespace, c.BootstrapLeader)
	}
	wantEtcd := []EtcdNode{{"etcd1", 2379, ""}, {"etcd2", 22379, ""}, {"etcd3", 32379, ""}}
	if !reflect.DeepEqual(c.Etcd, wantEtcd) {
		t.Errorf("etcd = %v, want %v", c.Etcd, wantEtcd)
	}
	wantPG := []PGNode{{"patroni1", 5435, 8008, ""}, {"patroni2", 5436, 8010, ""}, {"patroni3", 5437, 8012, ""}}
	if !reflect.DeepEqual(c.Patroni, wantPG) {
		t.Errorf("patroni = %v, want %v", c.Patroni, wantPG)
	}
	if c.ObjectStore != (ObjectStore{APIPort: 9000, ConsolePort: 9001, Bucket: "pgbackrest"}) {
		t.Errorf("object store = %+v", c.ObjectStore)
	}
	if c.NetworkName() != "pgnet" || c.ContainerName("etcd1") != "etcd1" || c.ContainerName("patroni2") != "patroni2" {
		t.Errorf("seed names: network %s, %s, %s", c.NetworkName(), c.ContainerName("etcd1"), c.ContainerName("patroni2"))
	}
	if c.KeyPrefix() != "/service/pg-cluster/" {
		t.Errorf("key prefix = %s", c.KeyPrefix())
	}
	if _, err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestOtherClustersArePrefixed(t *testing.T) {
	c, err := Generate("lab2", 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	if c.NetworkName() != "lab2-pgnet" || c.ContainerName("etcd1") != "lab2-etcd1" || c.VolumeName("etcd1") != "pgha-lab2-etcd1-data" {
		t.Errorf("names: %s %s %s", c.NetworkName(), c.ContainerName("etcd1"), c.VolumeName("etcd1"))
	}
	c.ShiftPorts(100)
	if c.Etcd[1].ClientPort != 22479 || c.Patroni[1].RESTPort != 8110 || c.ObjectStore.APIPort != 9100 {
		t.Errorf("shifted ports: %+v %+v %+v", c.Etcd[1], c.Patroni[1], c.ObjectStore)
	}
}

// examples/seed.yaml is the default written out; five-node.yaml is valid.
func TestExamples(t *testing.T) {
	seed, warnings, err := LoadFile(filepath.Join("..", "..", "examples", "seed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if !reflect.DeepEqual(seed, Seed()) {
		t.Errorf("examples/seed.yaml differs from the built-in seed:\n%s", seed.Marshal())
	}
	five, _, err := LoadFile(filepath.Join("..", "..", "examples", "five-node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(five.Etcd) != 3 || len(five.Patroni) != 5 || five.Name == seed.Name {
		t.Errorf("five-node: %d etcd, %d patroni, name %s", len(five.Etcd), len(five.Patroni), five.Name)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c, _ := Generate("rt", 5, 4)
	back, _, err := Parse(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the topology")
	}
}

func TestStrictDecoding(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown top-level field", "name: a\nreplicas: 3\n", `line 2: unknown field "replicas" in the top level`},
		{"unknown node field", "etcd:\n  - name: e1\n    clientPort: 2379\n    peerPort: 2380\n", `line 4: unknown field "peerPort" in an etcd member`},
		{"unknown patroni field", "patroni:\n  - name: p1\n    pgport: 1\n", `line 3: unknown field "pgport" in a patroni node`},
		{"wrong type", "etcd:\n  - name: e1\n    clientPort: many\n", "line 3: cannot unmarshal !!str `many` into int"},
		{"empty", "", "the topology file is empty"},
		{"two documents", "name: a\n---\nname: b\n", "more than one YAML document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	c := Seed()
	c.Name = "Bad_Name"
	c.Etcd[1].ClientPort = 70000
	c.Patroni[2].Name = "patroni1"
	c.Patroni[1].RESTPort = c.Patroni[0].RESTPort
	c.BootstrapLeader = "nobody"
	c.Namespace = "service"
	_, err := c.Validate()
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("error = %v, want a ValidationError", err)
	}
	want := []string{
		`name "Bad_Name"`,
		`namespace "service": must start with '/'`,
		`patroni[2] name "patroni1": already used by patroni[0]`,
		`etcd[1].clientPort 70000: not a valid port`,
		`patroni[1].restPort 8008: already used by patroni[0].restPort`,
		`bootstrapLeader "nobody": not one of the patroni nodes`,
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(ve.Problems), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing problem %q in:\n%s", w, err)
		}
	}
}

func TestValidationNodeCounts(t *testing.T) {
	c := Seed()
	c.Etcd, c.Patroni = nil, nil
	_, err := c.Validate()
	for _, w := range []string{"etcd: at least one member", "patroni: at least one node"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	c = Seed()
	c.Etcd = c.Etcd[:2]
	warnings, err := c.Validate()
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "even") {
		t.Errorf("two etcd members: warnings %v, err %v", warnings, err)
	}
	if _, err := Generate("x", 0, 3); err == nil {
		t.Error("Generate accepted 0 etcd members")
	}
}

func TestFileErrorsNameTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("name: ok\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), `line 2: unknown field "bogus"`) {
		t.Fatalf("error = %v", err)
	}
}

func TestPatroniConfig(t *testing.T) {
	c := Seed()
	n, _ := c.PatroniNode("patroni2")
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(c.PatroniConfig(n)), &cfg); err != nil {
		t.Fatal(err)
	}
	get := func(path ...string) any {
		var v any = cfg
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %s", path, p)
			}
			v = m[p]
		}
		return v
	}
	checks := []struct {
		path []string
		want any
	}{
		{[]string{"scope"}, "pg-cluster"},
		{[]string{"namespace"}, "/service"},
		{[]string{"name"}, "patroni2"},
		{[]string{"restapi", "connect_address"}, "patroni2:8008"},
		{[]string{"postgresql", "connect_address"}, "patroni2:5432"},
		{[]string{"postgresql", "data_dir"}, "/var/lib/postgresql/pgha/data"},
		{[]string{"postgresql", "bin_dir"}, "/usr/lib/postgresql/17/bin"},
		{[]string{"bootstrap", "dcs", "ttl"}, 20},
		{[]string{"bootstrap", "dcs", "loop_wait"}, 1},
		{[]string{"bootstrap", "dcs", "retry_timeout"}, 5},
		{[]string{"bootstrap", "dcs", "synchronous_mode"}, false},
		{[]string{"bootstrap", "dcs", "postgresql", "parameters", "password_encryption"}, "scram-sha-256"},
		{[]string{"postgresql", "authentication", "superuser", "username"}, "postgres"},
		{[]string{"postgresql", "authentication", "replication", "username"}, "replicator"},
		{[]string{"bootstrap", "dcs", "postgresql", "parameters", "archive_mode"}, "on"},
		{[]string{"bootstrap", "dcs", "postgresql", "parameters", "archive_command"}, "pgha-pgbackrest-push %p"},
		{[]string{"postgresql", "recovery_conf", "restore_command"}, `pgha-pgbackrest-get %f "%p"`},
		{[]string{"postgresql", "create_replica_methods"}, []any{"pgbackrest", "basebackup"}},
		{[]string{"postgresql", "pgbackrest", "command"}, "pgbackrest --delta --type=standby restore"},
		{[]string{"bootstrap", "method"}, nil},
		{[]string{"etcd3", "protocol"}, "https"},
		{[]string{"etcd3", "cacert"}, "/etc/pgha/ca.crt"},
		{[]string{"etcd3", "username"}, "patroni"},
		{[]string{"bootstrap", "post_bootstrap"}, "sh -c 'pgbackrest stanza-create || true'"},
		// Durable with one syncfs of the volume, not an fsync per file.
		{[]string{"bootstrap", "initdb"}, []any{map[string]any{"encoding": "UTF8"}, "data-checksums", map[string]any{"sync-method": "syncfs"}}},
		{[]string{"postgresql", "basebackup"}, []any{map[string]any{"checkpoint": "fast"}, map[string]any{"sync-method": "syncfs"}}},
		{[]string{"bootstrap", "dcs", "postgresql", "parameters", "recovery_init_sync_method"}, "syncfs"},
	}
	for _, ck := range checks {
		if got := get(ck.path...); !reflect.DeepEqual(got, ck.want) {
			t.Errorf("%s = %v, want %v", strings.Join(ck.path, "."), got, ck.want)
		}
	}
	hosts := get("etcd3", "hosts").([]any)
	if len(hosts) != 3 || hosts[0] != "etcd1:2379" || hosts[2] != "etcd3:2379" {
		t.Errorf("etcd3 hosts = %v", hosts)
	}
	text := c.PatroniConfig(n)
	for _, secret := range []string{"password"} {
		if strings.Contains(text, secret+":") {
			t.Errorf("the YAML carries a %s; PatroniConfigWithSecrets adds them", secret)
		}
	}
	for _, line := range get("postgresql", "pg_hba").([]any) {
		if l := line.(string); strings.HasPrefix(l, "host") && !strings.HasSuffix(l, "scram-sha-256") {
			t.Errorf("pg_hba line %q is not scram-sha-256", l)
		}
	}
}

func TestEtcdCommand(t *testing.T) {
	c := Seed()
	cmd := strings.Join(c.EtcdCommand(c.Etcd[0]), " ")
	for _, want := range []string{
		"--name etcd1",
		"--advertise-client-urls https://etcd1:2379",
		"--initial-cluster etcd1=https://etcd1:2380,etcd2=https://etcd2:2380,etcd3=https://etcd3:2380",
		"--listen-client-urls https://0.0.0.0:2379",
		"--listen-peer-urls https://0.0.0.0:2380",
		"--cert-file /etc/pgha/etcd/server.crt --key-file /etc/pgha/etcd/server.key",
		"--peer-trusted-ca-file /etc/pgha/etcd/ca.crt --peer-client-cert-auth",
	} {
		if !strings.Contains(cmd, want) {
			t.Errorf("etcd command lacks %q: %s", want, cmd)
		}
	}
}

func TestProfilesAndSynchronousMode(t *testing.T) {
	for name, tm := range Profiles {
		if tm.TTL < 20 || tm.LoopWait < 1 || tm.RetryTimeout < 3 || tm.LoopWait+2*tm.RetryTimeout > tm.TTL {
			t.Errorf("profile %s = %+v breaks Patroni's rules", name, tm)
		}
	}
	c := Seed()
	c.Profile, c.SynchronousMode = ProfileSeed, SyncStrict
	var cfg struct {
		Bootstrap struct {
			DCS map[string]any `yaml:"dcs"`
		} `yaml:"bootstrap"`
	}
	if err := yaml.Unmarshal([]byte(c.PatroniConfig(c.Patroni[0])), &cfg); err != nil {
		t.Fatal(err)
	}
	d := cfg.Bootstrap.DCS
	if d["ttl"] != 30 || d["loop_wait"] != 10 || d["retry_timeout"] != 10 || d["synchronous_mode"] != true || d["synchronous_mode_strict"] != true {
		t.Errorf("seed+strict dcs = %v", d)
	}
	c.Profile, c.SynchronousMode = "turbo", "maybe"
	_, err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), `profile "turbo"`) || !strings.Contains(err.Error(), `synchronousMode "maybe"`) {
		t.Errorf("bad profile and mode: %v", err)
	}
}

// The guard is on unless a file turns it off; its name is reserved.
func TestGuardSwitch(t *testing.T) {
	if !Seed().Guard {
		t.Error("the seed topology has no guard")
	}
	c, _, err := Parse([]byte("name: a\netcd: [{name: e1, clientPort: 2379}]\npatroni: [{name: p1, pgPort: 5432, restPort: 8008}]\nobjectStore: {apiPort: 9000}\n"))
	if err != nil || !c.Guard {
		t.Errorf("a file without guard: guard %v, err %v", c.Guard, err)
	}
	c, _, err = Parse([]byte("name: a\nguard: false\netcd: [{name: e1, clientPort: 2379}]\npatroni: [{name: p1, pgPort: 5432, restPort: 8008}]\nobjectStore: {apiPort: 9000}\n"))
	if err != nil || c.Guard {
		t.Errorf("guard: false: guard %v, err %v", c.Guard, err)
	}
	if _, _, err := Parse([]byte("guard: maybe\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("guard: maybe: %v", err)
	}
	c = Seed()
	c.Patroni[0].Name = GuardNode
	if _, err := c.Validate(); err == nil || !strings.Contains(err.Error(), `"guard": reserved for the guard`) {
		t.Errorf("a node named guard: %v", err)
	}
	if c.ContainerName(GuardNode) != "guard" {
		t.Errorf("seed guard container %s", c.ContainerName(GuardNode))
	}
}

// A restore bootstraps the bootstrap leader with pgBackRest at the target,
// and has the other nodes clone it.
func TestPatroniConfigRestore(t *testing.T) {
	c := Seed()
	at := time.Date(2026, 11, 25, 14, 3, 0, 500000000, time.UTC)
	for _, tc := range []struct {
		target RestoreTarget
		want   string
	}{
		{RestoreTarget{Time: at}, "pgbackrest --delta restore --target-action=promote --type=time '--target=2026-11-25 14:03:00.5+00'"},
		{RestoreTarget{LSN: "0/5002118"}, "pgbackrest --delta restore --target-action=promote --type=lsn --target=0/5002118"},
		{RestoreTarget{}, "pgbackrest --delta restore"},
	} {
		c.Restore = &tc.target
		var leader, replica map[string]any
		l, _ := c.PatroniNode(c.BootstrapLeader)
		r, _ := c.PatroniNode("patroni1")
		if err := yaml.Unmarshal([]byte(c.PatroniConfig(l)), &leader); err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal([]byte(c.PatroniConfig(r)), &replica); err != nil {
			t.Fatal(err)
		}
		boot := leader["bootstrap"].(map[string]any)
		method := boot["pgbackrest"].(map[string]any)
		if boot["method"] != "pgbackrest" || method["command"] != tc.want || method["keep_existing_recovery_conf"] != true {
			t.Errorf("%s: bootstrap = %v, want method pgbackrest running %q", tc.target, boot, tc.want)
		}
		if _, ok := replica["bootstrap"].(map[string]any)["method"]; ok {
			t.Errorf("a replica got a bootstrap method: %v", replica["bootstrap"])
		}
		if m := replica["postgresql"].(map[string]any)["create_replica_methods"]; !reflect.DeepEqual(m, []any{"basebackup"}) {
			t.Errorf("restored replicas clone with %v, want basebackup", m)
		}
	}
}

func TestPgBackRestEnv(t *testing.T) {
	c := Seed()
	env := strings.Join(c.PgBackRestEnv(), "\n")
	for _, want := range []string{
		"PGBACKREST_STANZA=pg-cluster", "PGBACKREST_REPO1_S3_ENDPOINT=objectstore", "PGBACKREST_REPO1_S3_BUCKET=pgbackrest",
		"PGBACKREST_REPO1_S3_URI_STYLE=path", "PGBACKREST_REPO1_STORAGE_CA_FILE=/etc/pgha/ca.crt", "PGBACKREST_PG1_PATH=/var/lib/postgresql/pgha/data",
	} {
		if !strings.Contains(env, want) {
			t.Errorf("pgBackRest environment lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "KEY") {
		t.Errorf("the topology's pgBackRest environment carries a key:\n%s", env)
	}
}

// One rule for cluster names, on hostile input: nothing that could leave
// the state root, break a Docker name or a shell line gets through.
func TestValidNameRefusesHostileInput(t *testing.T) {
	for _, bad := range []string{"", "..", ".", "../etc", "a/b", "/abs", "a\nb", "a b", "UPPER", "Mixed", "-lead", "x_y", "a;rm -rf", strings.Repeat("a", 41), strings.Repeat("a", 300), "pgha\x00", "ünï"} {
		if err := ValidName(bad); err == nil {
			t.Errorf("ValidName(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), "cluster name") || len(err.Error()) > 300 {
			t.Errorf("ValidName(%q): %v", bad, err)
		}
	}
	for _, good := range []string{"pgha", "lab2", "a", "e2e-up-1a2b", strings.Repeat("a", 40)} {
		if err := ValidName(good); err != nil {
			t.Errorf("ValidName(%q): %v", good, err)
		}
	}
}

func TestValidateRefusesHostileScopesAndNodes(t *testing.T) {
	c := Seed()
	c.Scope = "pg\ncluster"
	c.Namespace = "/service/../x y"
	c.Patroni[0].Name = "objectstore"
	c.Etcd[0].Name = "guard"
	_, err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`scope "pg\ncluster"`, `namespace "/service/../x y"`, `patroni[0] name "objectstore": reserved for the object store's alias`, `etcd[0] name "guard": reserved for the guard`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, scope := range []string{"a/b", "", strings.Repeat("s", 64), "../x"} {
		c := Seed()
		c.Scope = scope
		if _, err := c.Validate(); err == nil {
			t.Errorf("scope %q accepted", scope)
		}
	}
}

// The file copied into a node carries every password Patroni needs, and its
// environment then carries none.
func TestPatroniConfigWithSecrets(t *testing.T) {
	c := Seed()
	n, _ := c.PatroniNode("patroni1")
	text := c.PatroniConfigWithSecrets(n, PatroniSecrets{SuperuserPassword: "SU", ReplicationPassword: "REPL", RESTPassword: "REST", EtcdPassword: "ETCD"})
	var cfg struct {
		Etcd3 struct {
			Hosts    []string `yaml:"hosts"`
			Protocol string   `yaml:"protocol"`
			CACert   string   `yaml:"cacert"`
			Username string   `yaml:"username"`
			Password string   `yaml:"password"`
		} `yaml:"etcd3"`
		RESTAPI struct {
			Authentication map[string]string `yaml:"authentication"`
		} `yaml:"restapi"`
		PostgreSQL struct {
			Authentication map[string]map[string]string `yaml:"authentication"`
		} `yaml:"postgresql"`
		Name string `yaml:"name"`
	}
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	e := cfg.Etcd3
	if e.Protocol != "https" || e.CACert != PgBackRestCAFile || e.Username != "patroni" || e.Password != "ETCD" || len(e.Hosts) != 3 {
		t.Errorf("etcd3 = %+v", e)
	}
	if a := cfg.RESTAPI.Authentication; a["username"] != RESTUser || a["password"] != "REST" {
		t.Errorf("restapi.authentication = %v", a)
	}
	pa := cfg.PostgreSQL.Authentication
	if pa["superuser"]["username"] != SuperUser || pa["superuser"]["password"] != "SU" || pa["replication"]["username"] != ReplicationUser || pa["replication"]["password"] != "REPL" {
		t.Errorf("postgresql.authentication = %v", pa)
	}
	if cfg.Name != "patroni1" {
		t.Errorf("name = %q", cfg.Name)
	}
}

// Each etcd role reaches only its own keys: Patroni and the guard nothing
// outside the scope, the guard the leader key alone.
func TestEtcdRoles(t *testing.T) {
	c := Seed()
	roles := map[string][]EtcdPermission{}
	for _, r := range c.EtcdRoles() {
		roles[r.Name] = r.Permissions
	}
	if got := roles["patroni"]; !reflect.DeepEqual(got, []EtcdPermission{{Key: "/service/pg-cluster/", Prefix: true, ReadWrite: true}}) {
		t.Errorf("patroni = %+v", got)
	}
	if got := roles["guard"]; !reflect.DeepEqual(got, []EtcdPermission{{Key: "/service/pg-cluster/leader", ReadWrite: true}}) {
		t.Errorf("guard = %+v", got)
	}
	for _, p := range roles["pgha"] {
		if p.ReadWrite && p.Key != "/service/pg-cluster/" && p.Key != VerifyKeyPrefix {
			t.Errorf("pgha may write %+v", p)
		}
	}
	if _, ok := roles["root"]; ok || len(roles) != 3 {
		t.Errorf("roles = %v", roles)
	}
}

func TestPgBackRestConfig(t *testing.T) {
	got := PgBackRestConfig("AK", "SK")
	if got != "[global]\nrepo1-s3-key=AK\nrepo1-s3-key-secret=SK\n" {
		t.Errorf("PgBackRestConfig = %q", got)
	}
}
