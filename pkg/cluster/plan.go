package cluster

import (
	"fmt"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/pgha/pgha/pkg/engine"
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
	certName, keyName, uid := "server.crt", "server.key", objectStoreUID
	if kind == topology.StoreMinIO {
		s.Config.Cmd = []string{"server", "/data", "--console-address", fmt.Sprintf(":%d", topology.S3ConsolePort), "--certs-dir", tlsDir}
		s.Config.Env = []string{"MINIO_ROOT_USER=" + in.sec.S3AccessKey, "MINIO_ROOT_PASSWORD=" + in.sec.S3SecretKey}
		certName, keyName, uid = "public.crt", "private.key", 0
	} else {
		s.Config.Env = []string{"ROOT_ACCESS_KEY=" + in.sec.S3AccessKey, "ROOT_SECRET_KEY=" + in.sec.S3SecretKey}
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
		return []engine.File{
			{Name: tlsDir + "/" + certName, Data: cert, UID: uid, GID: uid},
			{Name: tlsDir + "/" + keyName, Data: key, Mode: 0o600, UID: uid, GID: uid},
		}, nil
	}
	return []Spec{s}
}

func planPatroni(in planInput) []Spec {
	var specs []Spec
	for _, n := range in.topo.Patroni {
		s := base(in.topo, topology.RolePatroni, n.Name, in.images.Patroni.Ref, topology.PatroniDataMount,
			map[int]int{topology.PostgresPort: n.PGPort, topology.PatroniAPIPort: n.RESTPort})
		s.Config.Env = []string{
			"PGHA_PATRONI_YML=" + in.topo.PatroniConfig(n),
			"PATRONI_SUPERUSER_USERNAME=" + topology.SuperUser,
			"PATRONI_SUPERUSER_PASSWORD=" + in.sec.SuperuserPassword,
			"PATRONI_REPLICATION_USERNAME=" + topology.ReplicationUser,
			"PATRONI_REPLICATION_PASSWORD=" + in.sec.ReplicationPassword,
			"PATRONI_RESTAPI_USERNAME=" + topology.RESTUser,
			"PATRONI_RESTAPI_PASSWORD=" + in.sec.RESTPassword,
			"PGBACKREST_REPO1_S3_KEY=" + in.sec.S3AccessKey,
			"PGBACKREST_REPO1_S3_KEY_SECRET=" + in.sec.S3SecretKey,
		}
		s.Config.Env = append(s.Config.Env, in.topo.PgBackRestEnv()...)
		store := in.store
		s.Files = func() ([]engine.File, error) {
			ca, err := store.ReadFile(secrets.CACertFile)
			if err != nil {
				return nil, err
			}
			return []engine.File{{Name: topology.PgBackRestCAFile, Data: ca}}, nil
		}
		stop := patroniStopTimeout
		s.Config.StopTimeout = &stop
		s.Host.ShmSize = shmSize
		specs = append(specs, s)
	}
	return specs
}

// planGuard is the guard's container: on the cluster network, no published
// port, the engine's socket read-only (it lists, inspects and watches
// events), read-only root filesystem, no capabilities, no privilege gain.
// It runs as root because the socket is root:docker 0660 and the image has
// no users; without capabilities root gets no more than the socket's owner
// rights.
func planGuard(in planInput) []Spec {
	topo := in.topo
	if !topo.Guard {
		return nil
	}
	labels := topo.Labels(topology.RoleGuard, topology.GuardNode)
	labels[topology.LabelTopology] = topologyLabel(topo)
	return []Spec{{
		Node: topology.GuardNode, Role: topology.RoleGuard, Name: topo.ContainerName(topology.GuardNode), Aliases: []string{topology.GuardNode},
		Config: &container.Config{
			Image: in.images.Guard.Ref, Hostname: topology.GuardNode, Labels: labels, User: "0:0",
			Cmd: []string{"--cluster", topo.Name},
		},
		Host: &container.HostConfig{
			// A bind mount of a missing source fails instead of making a directory.
			Mounts:         []mount.Mount{{Type: mount.TypeBind, Source: in.socket, Target: guardSocket, ReadOnly: true}},
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			RestartPolicy:  container.RestartPolicy{Name: restartPolicy},
			// Its decisions are read back from this log: keep it local and bounded.
			LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "max-file": "2"}},
		},
	}}
}

// guardSocket is where the guard finds the engine's socket, inside its container.
const guardSocket = "/var/run/docker.sock"

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
