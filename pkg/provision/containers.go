package provision

import (
	"archive/tar"
	"bytes"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
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

// spec is one container pgha creates: its configuration and the files copied
// into it before each start.
type spec struct {
	node, role, name string
	volume, mount    string
	config           *container.Config
	host             *container.HostConfig
	files            func() ([]byte, error) // tar archive extracted at / before start
}

// clusterSpecs builds the container specifications of a cluster, in start order:
// etcd members, the object store, Patroni nodes, then the guard when it is on.
func clusterSpecs(topo topology.Cluster, imgs ImageSet, sec secrets.Secrets, store secrets.Store) []spec {
	var specs []spec
	base := func(role, node string, image string, volTarget string, ports map[int]int) spec {
		labels := topo.Labels(role, node)
		labels[topology.LabelTopology] = topologyLabel(topo)
		exposed, bindings := nat.PortSet{}, nat.PortMap{}
		for cport, hport := range ports {
			p := nat.Port(strconv.Itoa(cport) + "/tcp")
			exposed[p] = struct{}{}
			bindings[p] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(hport)}}
		}
		vol := topo.VolumeName(node)
		return spec{
			node: node, role: role, name: topo.ContainerName(node), volume: vol, mount: volTarget,
			config: &container.Config{Image: image, Hostname: node, Labels: labels, ExposedPorts: exposed},
			host: &container.HostConfig{
				PortBindings:  bindings,
				RestartPolicy: container.RestartPolicy{Name: restartPolicy},
				Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: volTarget}},
			},
		}
	}
	for _, e := range topo.Etcd {
		s := base(topology.RoleEtcd, e.Name, imgs.Etcd.Ref, "/var/lib/etcd", map[int]int{topology.EtcdClientPort: e.ClientPort})
		s.config.Cmd = topo.EtcdCommand(e)
		specs = append(specs, s)
	}

	kind := imgs.ObjectStore.Kind
	ports := map[int]int{topology.S3APIPort: topo.ObjectStore.APIPort}
	if kind == topology.StoreMinIO && topo.ObjectStore.ConsolePort != 0 {
		ports[topology.S3ConsolePort] = topo.ObjectStore.ConsolePort
	}
	s := base(topology.RoleObjectStore, kind, imgs.ObjectStore.Ref, "/data", ports)
	certName, keyName, uid := "server.crt", "server.key", objectStoreUID
	if kind == topology.StoreMinIO {
		s.config.Cmd = []string{"server", "/data", "--console-address", fmt.Sprintf(":%d", topology.S3ConsolePort), "--certs-dir", tlsDir}
		s.config.Env = []string{"MINIO_ROOT_USER=" + sec.S3AccessKey, "MINIO_ROOT_PASSWORD=" + sec.S3SecretKey}
		certName, keyName, uid = "public.crt", "private.key", 0
	} else {
		s.config.Env = []string{"ROOT_ACCESS_KEY=" + sec.S3AccessKey, "ROOT_SECRET_KEY=" + sec.S3SecretKey}
	}
	s.files = func() ([]byte, error) {
		cert, err := store.ReadFile(secrets.ServerCertFile)
		if err != nil {
			return nil, err
		}
		key, err := store.ReadFile(secrets.ServerKeyFile)
		if err != nil {
			return nil, err
		}
		return tarOf(uid, map[string][]byte{tlsDir + "/" + certName: cert, tlsDir + "/" + keyName: key})
	}
	specs = append(specs, s)

	for _, n := range topo.Patroni {
		s := base(topology.RolePatroni, n.Name, imgs.Patroni.Ref, topology.PatroniDataMount,
			map[int]int{topology.PostgresPort: n.PGPort, topology.PatroniAPIPort: n.RESTPort})
		s.config.Env = []string{
			"PGHA_PATRONI_YML=" + topo.PatroniConfig(n),
			"PATRONI_SUPERUSER_USERNAME=" + topology.SuperUser,
			"PATRONI_SUPERUSER_PASSWORD=" + sec.SuperuserPassword,
			"PATRONI_REPLICATION_USERNAME=" + topology.ReplicationUser,
			"PATRONI_REPLICATION_PASSWORD=" + sec.ReplicationPassword,
			"PATRONI_RESTAPI_USERNAME=" + topology.RESTUser,
			"PATRONI_RESTAPI_PASSWORD=" + sec.RESTPassword,
			"PGBACKREST_REPO1_S3_KEY=" + sec.S3AccessKey,
			"PGBACKREST_REPO1_S3_KEY_SECRET=" + sec.S3SecretKey,
		}
		s.config.Env = append(s.config.Env, topo.PgBackRestEnv()...)
		s.files = func() ([]byte, error) {
			ca, err := store.ReadFile(secrets.CACertFile)
			if err != nil {
				return nil, err
			}
			return tarOf(0, map[string][]byte{topology.PgBackRestCAFile: ca})
		}
		stop := patroniStopTimeout
		s.config.StopTimeout = &stop
		s.host.ShmSize = shmSize
		specs = append(specs, s)
	}
	if topo.Guard {
		specs = append(specs, guardSpec(topo, imgs.Guard))
	}
	return specs
}

// networking attaches a container to the cluster network under its node name
// (and the object store also under its role, whatever its kind).
func networking(topo topology.Cluster, role, node string) *network.NetworkingConfig {
	aliases := []string{node}
	if role == topology.RoleObjectStore {
		aliases = append(aliases, topology.ObjectStoreAlias)
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		topo.NetworkName(): {Aliases: aliases},
	}}
}

// tarOf archives files (absolute paths) owned by uid, keys readable by their
// owner only, with their directories.
func tarOf(uid int, files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rel := strings.TrimPrefix(name, "/")
		if dir := path.Dir(rel) + "/"; !dirs[dir] {
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, Uid: uid, Gid: uid, ModTime: time.Now()}); err != nil {
				return nil, err
			}
		}
		mode := int64(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		data := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: mode, Size: int64(len(data)), Uid: uid, Gid: uid, ModTime: time.Now()}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	err := tw.Close()
	return buf.Bytes(), err
}
