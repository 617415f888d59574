package cluster

import (
	"fmt"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// Container settings that matter for PostgreSQL and for fault tests.
const (
	// patroniStopTimeout leaves a primary time for its shutdown checkpoint;
	// Docker's default 10 s can turn a graceful stop into a crash.
	patroniStopTimeout = 60
	// shmSize: PostgreSQL needs more than Docker's 64 MB /dev/shm.
	shmSize = 256 << 20
	// restartPolicy: none, so that the engine never undoes a fault under test.
	restartPolicy = container.RestartPolicyDisabled
	// tlsDir is where the object store finds its certificate and key.
	tlsDir = "/etc/pgha/tls"
	// objectStoreUID owns the TLS files inside the versitygw image.
	objectStoreUID = 10001
)

// Spec is one container pgha creates: its configuration and the files copied
// into it before each start.
type Spec struct {
	Node, Role, Name string
	// Volume is its data volume ("" for none) and Mount where it goes.
	Volume, Mount string
	Config        *container.Config
	Host          *container.HostConfig
	// Aliases are its names on the cluster network.
	Aliases []string
	// Files are copied in before each start (TLS material, the CA).
	Files func() ([]engine.File, error) `json:"-"`
}

// planInput is what every role's planner needs.
type planInput struct {
	topo   topology.Cluster
	images images.ImageSet
	sec    secrets.Secrets
	store  secrets.Store
	// socket is the engine-side path of the engine's socket (the guard's).
	socket string
}

// planners make the containers of each role, in start order. A new role
// (a router, say) is one more planner here and a topology field.
var planners = []func(planInput) []Spec{planEtcd, planObjectStore, planPatroni, planGuard, planRouter}

// Plan is every container of a cluster, in start order: etcd members, the
// object store, Patroni nodes, then the guard and the router when they are on.
func Plan(topo topology.Cluster, imgs images.ImageSet, sec secrets.Secrets, store secrets.Store, socket string) []Spec {
	in := planInput{topo: topo, images: imgs, sec: sec, store: store, socket: socket}
	var specs []Spec
	for _, plan := range planners {
		specs = append(specs, plan(in)...)
	}
	return specs
}

// base is what every data-holding container shares: labels, the topology
// label, published ports on 127.0.0.1, no restart, its volume.
func base(topo topology.Cluster, role, node, image, volTarget string, ports map[int]int) Spec {
	labels := topo.Labels(role, node)
	labels[topology.LabelTopology] = topologyLabel(topo)
	exposed, bindings := nat.PortSet{}, nat.PortMap{}
	for cport, hport := range ports {
		p := nat.Port(strconv.Itoa(cport) + "/tcp")
		exposed[p] = struct{}{}
		bindings[p] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(hport)}}
	}
	vol := topo.VolumeName(node)
	return Spec{
		Node: node, Role: role, Name: topo.ContainerName(node), Volume: vol, Mount: volTarget, Aliases: []string{node},
		Config: &container.Config{Image: image, Hostname: node, Labels: labels, ExposedPorts: exposed},
		Host: &container.HostConfig{
			PortBindings:  bindings,
			RestartPolicy: container.RestartPolicy{Name: restartPolicy},
			Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: volTarget}},
		},
	}
}

func planEtcd(in planInput) []Spec {
	var specs []Spec
	for _, e := range in.topo.Etcd {
		s := base(in.topo, topology.RoleEtcd, e.Name, in.images.Etcd.Ref, "/var/lib/etcd", map[int]int{topology.EtcdClientPort: e.ClientPort})
		s.Config.Cmd = in.topo.EtcdCommand(e)
		store, rootLogin := in.store, topology.EtcdRootUser+":"+in.sec.EtcdRootPassword
		s.Files = func() ([]engine.File, error) {
			ca, cert, key, err := readAll(store, secrets.CACertFile, secrets.EtcdCertFile, secrets.EtcdKeyFile)
			if err != nil {
				return nil, err
			}
			uid := topology.EtcdUID
			return []engine.File{
				{Name: topology.EtcdCAFile, Data: ca, UID: uid, GID: uid},
				{Name: topology.EtcdCertFile, Data: cert, UID: uid, GID: uid},
				{Name: topology.EtcdKeyFile, Data: key, Mode: 0o600, UID: uid, GID: uid},
				{Name: topology.EtcdctlUserFile, Data: []byte(rootLogin + "\n"), Mode: 0o600, UID: uid, GID: uid},
			}, nil
		}
		specs = append(specs, s)
	}
	return specs
}

func planObjectStore(in planInput) []Spec {
	topo, kind := in.topo, in.images.ObjectStore.Kind
	if kind == "" {
		kind = topology.StoreVersityGW
	}
	ports := map[int]int{topology.S3APIPort: topo.ObjectStore.APIPort}
	if kind == topology.StoreMinIO && topo.ObjectStore.ConsolePort != 0 {
		ports[topology.S3ConsolePort] = topo.ObjectStore.ConsolePort
	}
	s := base(topo, topology.RoleObjectStore, kind, in.images.ObjectStore.Ref, "/data", ports)
	s.Aliases = append(s.Aliases, topology.ObjectStoreAlias)
	// The root account reaches the store as files, never in its environment.
	certName, keyName, uid := "server.crt", "server.key", objectStoreUID
	root := []engine.File{{Name: topology.ObjectStoreRootFile, Mode: 0o600, UID: uid, GID: uid,
		Data: []byte("ROOT_ACCESS_KEY=" + in.sec.S3AccessKey + "\nROOT_SECRET_KEY=" + in.sec.S3SecretKey + "\n")}}
	if kind == topology.StoreMinIO {
		s.Config.Cmd = []string{"server", "/data", "--console-address", fmt.Sprintf(":%d", topology.S3ConsolePort), "--certs-dir", tlsDir}
		// MinIO reads Docker-secret style files: /run/secrets/<name>.
		s.Config.Env = []string{"MINIO_ROOT_USER_FILE=minio_root_user", "MINIO_ROOT_PASSWORD_FILE=minio_root_password"}
		certName, keyName, uid = "public.crt", "private.key", 0
		root = []engine.File{
			{Name: "/run/secrets/minio_root_user", Data: []byte(in.sec.S3AccessKey), Mode: 0o600},
			{Name: "/run/secrets/minio_root_password", Data: []byte(in.sec.S3SecretKey), Mode: 0o600},
		}
	}
	store := in.store
	s.Files = func() ([]engine.File, error) {
		cert, err := store.ReadFile(secrets.ServerCertFile)
		if err != nil {
			return nil, err
		}
		key, err := store.ReadFile(secrets.ServerKeyFile)
		if err != nil {
			return nil, err
		}
		return append([]engine.File{
			{Name: tlsDir + "/" + certName, Data: cert, UID: uid, GID: uid},
			{Name: tlsDir + "/" + keyName, Data: key, Mode: 0o600, UID: uid, GID: uid},
		}, root...), nil
	}
	return []Spec{s}
}

func planPatroni(in planInput) []Spec {
	var specs []Spec
	for _, n := range in.topo.Patroni {
		s := base(in.topo, topology.RolePatroni, n.Name, in.images.Patroni.Ref, topology.PatroniDataMount,
			map[int]int{topology.PostgresPort: n.PGPort, topology.PatroniAPIPort: n.RESTPort})
		// Every secret is in a file copied in before start (mode 0600, owned
		// by postgres): the whole patroni.yml, and pgBackRest's S3 keys.
		s.Config.Env = in.topo.PgBackRestEnv()
		config := in.topo.PatroniConfigWithSecrets(n, topology.PatroniSecrets{
			SuperuserPassword: in.sec.SuperuserPassword, ReplicationPassword: in.sec.ReplicationPassword,
			RESTPassword: in.sec.RESTPassword, EtcdPassword: in.sec.EtcdPatroniPassword})
		s3Key, s3Secret := pgBackRestS3Account(in)
		store := in.store
		s.Files = func() ([]engine.File, error) {
			ca, err := store.ReadFile(secrets.CACertFile)
			if err != nil {
				return nil, err
			}
			uid := topology.PostgresUID
			return []engine.File{
				{Name: topology.PgBackRestCAFile, Data: ca},
				{Name: topology.PatroniConfigFile, Data: []byte(config), Mode: 0o600, UID: uid, GID: uid},
				{Name: topology.PgBackRestConfigFile, Data: []byte(topology.PgBackRestConfig(s3Key, s3Secret)), Mode: 0o600, UID: uid, GID: uid},
			}, nil
		}
		stop := patroniStopTimeout
		s.Config.StopTimeout = &stop
		s.Host.ShmSize = shmSize
		specs = append(specs, s)
	}
	return specs
}

// planGuard is the guard's two containers. The proxy is the only one with
// the engine's socket (read-only bind; the API is limited by the proxy's
// allow-list, not by the bind): it serves the guard a read-only view — ping,
// version, the cluster's events and container list, no inspect, no writes —
// on a unix socket in a volume that only the two mount. The guard runs as
// nobody with that socket read-only, is told the topology on its command
// line instead of discovering it, and reaches etcd on the cluster network.
// Both: no published port, read-only root filesystem, no capabilities, no
// privilege gain. The proxy runs as root because the socket is root:docker
// 0660 and the image has no users; without capabilities root gets no more
// than the socket's owner rights.
func planGuard(in planInput) []Spec {
	topo := in.topo
	if !topo.Guard {
		return nil
	}
	vol := topo.VolumeName(topology.GuardProxyNode)
	host := func(mounts ...mount.Mount) *container.HostConfig {
		return &container.HostConfig{
			Mounts:         mounts,
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			RestartPolicy:  container.RestartPolicy{Name: restartPolicy},
			// Decisions and refusals are read back from these logs: keep them local and bounded.
			LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "max-file": "2"}},
		}
	}
	labels := func(node string) map[string]string {
		l := topo.Labels(topology.RoleGuard, node)
		l[topology.LabelTopology] = topologyLabel(topo)
		return l
	}
	proxy := Spec{
		Node: topology.GuardProxyNode, Role: topology.RoleGuard, Name: topo.ContainerName(topology.GuardProxyNode), Volume: vol, Mount: guard.APIDir,
		Config: &container.Config{
			Image: in.images.Guard.Ref, Hostname: topology.GuardProxyNode, Labels: labels(topology.GuardProxyNode), User: "0:0",
			Entrypoint: []string{"/pgha", "guard", "proxy"},
			Cmd:        []string{"--cluster", topo.Name, "--listen", guard.APISocket, "--engine", guardSocket},
		},
		// A bind mount of a missing source fails instead of making a directory.
		Host: host(mount.Mount{Type: mount.TypeBind, Source: in.socket, Target: guardSocket, ReadOnly: true},
			mount.Mount{Type: mount.TypeVolume, Source: vol, Target: guard.APIDir}),
	}
	// The guard's etcd login and the CA are files on a small volume of its
	// own, readable by nobody only: the engine copies nothing into a
	// read-only root filesystem.
	secretsVol := topo.VolumeName(topology.GuardNode)
	store, login := in.store, topology.EtcdGuardUser+":"+in.sec.EtcdGuardPassword
	g := Spec{
		Node: topology.GuardNode, Role: topology.RoleGuard, Name: topo.ContainerName(topology.GuardNode), Aliases: []string{topology.GuardNode},
		Volume: secretsVol, Mount: topology.GuardSecretsDir,
		Files: func() ([]engine.File, error) {
			ca, err := store.ReadFile(secrets.CACertFile)
			if err != nil {
				return nil, err
			}
			return []engine.File{
				{Name: topology.GuardCAFile, Data: ca, UID: guardUID, GID: guardUID},
				{Name: topology.GuardEtcdUserFile, Data: []byte(login + "\n"), Mode: 0o600, UID: guardUID, GID: guardUID},
			}, nil
		},
		Config: &container.Config{
			Image: in.images.Guard.Ref, Hostname: topology.GuardNode, Labels: labels(topology.GuardNode), User: guardUser,
			Cmd: []string{"--topology", topologyLabel(topo), "--engine-socket", guard.APISocket},
		},
		Host: host(mount.Mount{Type: mount.TypeVolume, Source: vol, Target: guard.APIDir, ReadOnly: true},
			mount.Mount{Type: mount.TypeVolume, Source: secretsVol, Target: topology.GuardSecretsDir}),
	}
	return []Spec{proxy, g}
}

// pgBackRestS3Account is the S3 account pgBackRest uses: its own on versitygw
// (up makes it and gives it the bucket); MinIO's root account otherwise.
func pgBackRestS3Account(in planInput) (key, secret string) {
	if in.images.ObjectStore.Kind == topology.StoreMinIO {
		return in.sec.S3AccessKey, in.sec.S3SecretKey
	}
	return in.sec.PgBackRestS3AccessKey, in.sec.PgBackRestS3SecretKey
}

// readAll reads files of the state directory.
func readAll(store secrets.Store, names ...string) (a, b, c []byte, err error) {
	out := make([][]byte, 3)
	for i, n := range names {
		if out[i], err = store.ReadFile(n); err != nil {
			return nil, nil, nil, err
		}
	}
	return out[0], out[1], out[2], nil
}

// guardSocket is where the guard's proxy finds the engine's socket, inside its container.
const guardSocket = "/var/run/docker.sock"

// guardUser is nobody: the guard reads only the proxy's socket and its own
// etcd login.
const (
	guardUID  = 65534
	guardUser = "65534:65534"
)

// networking attaches a container to the cluster network under its aliases.
func networking(topo topology.Cluster, s Spec) *network.NetworkingConfig {
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		topo.NetworkName(): {Aliases: s.Aliases},
	}}
}

// ByRole returns the specs of one role.
func ByRole(specs []Spec, role string) []Spec {
	var out []Spec
	for _, s := range specs {
		if s.Role == role {
			out = append(out, s)
		}
	}
	return out
}

func names(specs []Spec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Name)
	}
	return out
}

func specByNode(specs []Spec, node string) Spec {
	for _, s := range specs {
		if s.Node == node {
			return s
		}
	}
	return Spec{}
}
