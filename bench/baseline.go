package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// baselineScript writes the plain docker CLI commands a careful person would
// type to bring up the same stack by hand — network, three etcd, three
// Patroni, with pgha's images and the same Patroni configuration, one after
// another — and to wait for the same readiness condition: one primary, every
// replica streaming. Polls, no fixed sleeps.
func baselineScript(dir string, topo topology.Cluster, etcdImage, patroniImage string) (script, cleanup string, err error) {
	var b, c strings.Builder
	b.WriteString("set -eu\n")
	net := topo.NetworkName()
	fmt.Fprintf(&b, "docker network create %s >/dev/null\n", net)
	for _, e := range topo.Etcd {
		name := topo.ContainerName(e.Name)
		fmt.Fprintf(&b, "docker run -d --name %s --hostname %s --network %s --network-alias %s -p 127.0.0.1:%d:2379 -v %s:/var/lib/etcd %s %s >/dev/null\n",
			name, e.Name, net, e.Name, e.ClientPort, topo.VolumeName(e.Name), etcdImage, strings.Join(plainEtcd(topo.EtcdCommand(e)), " "))
		fmt.Fprintf(&c, "docker rm -f %s >/dev/null 2>&1; docker volume rm %s >/dev/null 2>&1\n", name, topo.VolumeName(e.Name))
	}
	fmt.Fprintf(&b, "until docker exec -e ETCDCTL_ENDPOINTS=http://127.0.0.1:2379 -e ETCDCTL_CACERT= %s etcdctl endpoint health --cluster >/dev/null 2>&1; do sleep 0.1; done\n", topo.ContainerName(topo.Etcd[0].Name))
	pw := []string{"-e PATRONI_SUPERUSER_USERNAME=postgres", "-e PATRONI_SUPERUSER_PASSWORD=" + secrets.Random(24),
		"-e PATRONI_REPLICATION_USERNAME=replicator", "-e PATRONI_REPLICATION_PASSWORD=" + secrets.Random(24),
		"-e PATRONI_RESTAPI_USERNAME=patroni", "-e PATRONI_RESTAPI_PASSWORD=" + secrets.Random(24)}
	run := func(n topology.PGNode) {
		file := filepath.Join(dir, n.Name+".yml")
		_ = os.WriteFile(file, []byte(plainPatroni(topo.PatroniConfig(n))), 0o600)
		name := topo.ContainerName(n.Name)
		fmt.Fprintf(&b, "docker run -d --name %s --hostname %s --network %s --network-alias %s --shm-size 256m --stop-timeout 60 -p 127.0.0.1:%d:5432 -p 127.0.0.1:%d:8008 -v %s:/var/lib/postgresql/pgha -e PGHA_PATRONI_YML=\"$(cat %s)\" %s %s >/dev/null\n",
			name, n.Name, net, n.Name, n.PGPort, n.RESTPort, topo.VolumeName(n.Name), file, strings.Join(pw, " "), patroniImage)
		fmt.Fprintf(&c, "docker rm -f %s >/dev/null 2>&1; docker volume rm %s >/dev/null 2>&1\n", name, topo.VolumeName(n.Name))
	}
	leader, _ := topo.PatroniNode(topo.BootstrapLeader)
	run(leader)
	fmt.Fprintf(&b, "until curl -sf 127.0.0.1:%d/primary >/dev/null; do sleep 0.1; done\n", leader.RESTPort)
	for _, n := range topo.Patroni {
		if n.Name != leader.Name {
			run(n)
		}
	}
	for _, n := range topo.Patroni {
		if n.Name != leader.Name {
			fmt.Fprintf(&b, "until curl -s 127.0.0.1:%d/patroni | grep -q '\"replication_state\": *\"streaming\"'; do sleep 0.1; done\n", n.RESTPort)
		}
	}
	fmt.Fprintf(&c, "docker network rm %s >/dev/null 2>&1\n", net)
	script, cleanup = filepath.Join(dir, "up.sh"), filepath.Join(dir, "down.sh")
	if err := os.WriteFile(script, []byte(b.String()), 0o700); err != nil {
		return "", "", err
	}
	return script, cleanup, os.WriteFile(cleanup, []byte(c.String()), 0o700)
}

// timeBaseline runs the baseline once and removes what it made.
func timeBaseline(topo topology.Cluster, etcdImage, patroniImage string) (float64, error) {
	dir, err := os.MkdirTemp("", "pgha-baseline-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	script, cleanup, err := baselineScript(dir, topo, etcdImage, patroniImage)
	if err != nil {
		return 0, err
	}
	defer exec.Command("bash", cleanup).Run()
	start := time.Now()
	out, err := exec.Command("timeout", "300", "bash", script).CombinedOutput()
	d := time.Since(start).Seconds()
	if err != nil {
		return d, fmt.Errorf("baseline: %v\n%s", err, out)
	}
	return d, nil
}

// The by-hand stack is the guide's: etcd without TLS or logins. plainEtcd
// drops pgha's TLS flags from a member's command, plainPatroni the matching
// etcd3 settings from Patroni's configuration.
func plainEtcd(cmd []string) []string {
	var out []string
	for i := 0; i < len(cmd); i++ {
		switch cmd[i] {
		case "--cert-file", "--key-file", "--peer-cert-file", "--peer-key-file", "--peer-trusted-ca-file":
			i++
		case "--peer-client-cert-auth":
		default:
			out = append(out, strings.ReplaceAll(cmd[i], "https://", "http://"))
		}
	}
	return out
}

func plainPatroni(yml string) string {
	var keep []string
	for _, l := range strings.Split(yml, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "cacert:") || strings.HasPrefix(t, "username: "+topology.EtcdPatroniUser) && strings.HasPrefix(l, "    ") {
			continue
		}
		keep = append(keep, strings.Replace(l, "protocol: https", "protocol: http", 1))
	}
	return strings.Join(keep, "\n")
}
