package cluster

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// A Patroni node's service: pinned, never restarted by the swarm, ports in
// host mode, names resolved to the task, /dev/shm large enough, a stop
// grace long enough for the shutdown checkpoint, its volume labelled, its
// files only as secrets.
func TestServiceSpecOfPatroni(t *testing.T) {
	topo := topology.Seed()
	topo.Engine = topology.EngineSwarm
	imgs := images.ImageSet{Patroni: images.Image{Ref: "pgha/patroni:x"}, Etcd: images.Image{Ref: "pgha/etcd:x"}, ObjectStore: images.Image{Ref: "pgha/objectstore:x", Kind: topology.StoreVersityGW}}
	sp := specByNode(Plan(topo, imgs, secrets.Secrets{SuperuserPassword: "s3cret"}, secrets.Store{}, ""), "patroni2")
	refs := []*swarm.SecretReference{{SecretID: "id1", SecretName: "pgha-patroni2-patroni-yml-abc", File: &swarm.SecretReferenceFileTarget{Name: topology.PatroniConfigFile, UID: "999", GID: "999", Mode: 0o600}}}
	svc := serviceSpecOf(topo, sp, topology.Placement{Node: "h2", Constraint: "node.hostname==h2"}, refs)

	if svc.Name != topo.ContainerName("patroni2") || svc.Labels[topology.LabelCluster] != "pgha" {
		t.Errorf("name %q labels %v", svc.Name, svc.Labels)
	}
	tt := svc.TaskTemplate
	if tt.RestartPolicy == nil || tt.RestartPolicy.Condition != swarm.RestartPolicyConditionNone {
		t.Errorf("restart policy %+v: a failover test would be undone", tt.RestartPolicy)
	}
	if tt.Placement == nil || len(tt.Placement.Constraints) != 1 || tt.Placement.Constraints[0] != "node.hostname==h2" {
		t.Errorf("placement %+v", tt.Placement)
	}
	if len(tt.Networks) != 1 || tt.Networks[0].Target != topo.NetworkName() || tt.Networks[0].Aliases[0] != "patroni2" {
		t.Errorf("networks %+v", tt.Networks)
	}
	if svc.EndpointSpec.Mode != swarm.ResolutionModeDNSRR || len(svc.EndpointSpec.Ports) != 2 {
		t.Fatalf("endpoint %+v", svc.EndpointSpec)
	}
	for _, p := range svc.EndpointSpec.Ports {
		if p.PublishMode != swarm.PortConfigPublishModeHost || (p.PublishedPort != 5436 && p.PublishedPort != 8010) {
			t.Errorf("port %+v", p)
		}
	}
	cs := tt.ContainerSpec
	if cs.StopGracePeriod == nil || cs.StopGracePeriod.Seconds() != patroniStopTimeout {
		t.Errorf("stop grace %v", cs.StopGracePeriod)
	}
	var shm, data bool
	for _, m := range cs.Mounts {
		shm = shm || (m.Type == mount.TypeTmpfs && m.Target == "/dev/shm" && m.TmpfsOptions.SizeBytes == shmSize)
		data = data || (m.Type == mount.TypeVolume && m.Source == topo.VolumeName("patroni2") && m.VolumeOptions.Labels[topology.LabelCluster] == "pgha")
	}
	if !shm || !data {
		t.Errorf("mounts %+v: /dev/shm %v, labelled data volume %v", cs.Mounts, shm, data)
	}
	if len(cs.Secrets) != 1 || cs.Secrets[0].File.Name != topology.PatroniConfigFile {
		t.Errorf("secrets %+v", cs.Secrets)
	}
	for _, e := range cs.Env {
		if strings.Contains(e, "s3cret") {
			t.Errorf("a secret in the environment: %s", e)
		}
	}
}
