package provision

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/topology"
)

const (
	// GuardBinaryEnv names a static Linux build of pgha for the guard image,
	// for a pgha that cannot run in the engine itself (macOS, another arch).
	GuardBinaryEnv = "PGHA_GUARD_BINARY"
	// guardBinaryName is the binary's name in the guard's build context.
	guardBinaryName = "pgha"
	// dockerSocket is the engine's socket, as the engine's host sees it.
	dockerSocket = "/var/run/docker.sock"
)

// guardImage resolves the guard's image: the pgha binary that runs (or
// $PGHA_GUARD_BINARY) alone in an image from scratch, tagged with a hash that
// covers the binary. A binary the engine cannot run leaves the image
// Unavailable, with the reason and the way out.
func (p *Provisioner) guardImage(ctx context.Context) (Image, error) {
	v, err := p.Docker.ServerVersion(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("asking the engine for its platform: %w", err)
	}
	path, err := guardBinary(v.Os, v.Arch)
	if err != nil {
		return Image{Role: topology.RoleGuard, Source: "unavailable", Unavailable: err.Error()}, nil
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return Image{}, fmt.Errorf("hashing the guard binary %s: %w", path, err)
	}
	spec := &buildSpec{dir: "guard", inputs: "pgha=" + sum, extra: func(context.Context) (map[string][]byte, error) {
		data, err := os.ReadFile(path)
		return map[string][]byte{guardBinaryName: data}, err
	}}
	return p.localImage(ctx, topology.RoleGuard, spec, "the pgha binary "+path)
}

// guardBinary returns the pgha binary to put in the guard image: the running
// one, or $PGHA_GUARD_BINARY; it must be a static ELF binary for the engine.
func guardBinary(engineOS, engineArch string) (string, error) {
	path, fromEnv := os.Getenv(GuardBinaryEnv), true
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("cannot find the running pgha binary: %w", err)
		}
		path, fromEnv = exe, false
	}
	err := checkGuardBinary(path, engineOS, engineArch)
	if err == nil {
		return path, nil
	}
	how := fmt.Sprintf("build one with `GOOS=linux GOARCH=%s CGO_ENABLED=0 go build -o pgha-linux ./cmd/pgha` and set %s=$PWD/pgha-linux, or run without the guard: `pgha up --guard=false`",
		engineArch, GuardBinaryEnv)
	if fromEnv {
		return "", fmt.Errorf("the guard needs a static linux/%s pgha binary, and %s=%s is not one: %v; %s", engineArch, GuardBinaryEnv, path, err, how)
	}
	return "", fmt.Errorf("the guard runs pgha itself in a linux/%s container, and this pgha (%s) cannot: %v; %s", engineArch, path, err, how)
}

// elfMachines maps Go's architecture names to ELF machine types.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "386": elf.EM_386,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// checkGuardBinary says why a binary cannot run alone in an image from
// scratch on the engine: not Linux ELF, another architecture, or dynamically
// linked (no libc in the image).
func checkGuardBinary(path, engineOS, engineArch string) error {
	if engineOS != "linux" {
		return fmt.Errorf("the engine runs %s containers; the guard needs a linux engine", engineOS)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("not a Linux (ELF) binary: %v", err)
	}
	defer f.Close()
	want, ok := elfMachines[engineArch]
	switch {
	case !ok:
		return fmt.Errorf("unsupported engine architecture %q", engineArch)
	case f.Machine != want:
		return fmt.Errorf("built for %s, the engine is %s", f.Machine, engineArch)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("dynamically linked (built with cgo), and the guard image has no C library")
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// guardSpec is the guard's container: on the cluster network, no published
// port, the engine's socket read-only (it lists, inspects and watches
// events), read-only root filesystem, no capabilities, no privilege gain.
// It runs as root because the socket is root:docker 0660 and the image has
// no users; without capabilities root gets no more than the socket's owner
// rights.
func guardSpec(topo topology.Cluster, img Image) spec {
	labels := topo.Labels(topology.RoleGuard, topology.GuardNode)
	labels[topology.LabelTopology] = topologyLabel(topo)
	return spec{
		node: topology.GuardNode, role: topology.RoleGuard, name: topo.ContainerName(topology.GuardNode),
		config: &container.Config{
			Image: img.Ref, Hostname: topology.GuardNode, Labels: labels, User: "0:0",
			Cmd: []string{"--cluster", topo.Name},
		},
		host: &container.HostConfig{
			Binds:          []string{dockerSocket + ":" + dockerSocket + ":ro"},
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			RestartPolicy:  container.RestartPolicy{Name: restartPolicy},
			// Its decisions are read back from this log: keep it local and bounded.
			LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "max-file": "2"}},
		},
	}
}

// replaceOldGuard removes a guard container that runs another pgha build than
// this one, so that up recreates it: the guard keeps no state.
func (p *Provisioner) replaceOldGuard(ctx context.Context, topo topology.Cluster, img Image, existing map[string]Container) error {
	name := topo.ContainerName(topology.GuardNode)
	c, ok := existing[name]
	if !topo.Guard || !ok || c.State == StateMissing || c.Image == img.Ref {
		return nil
	}
	if err := p.Docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("replacing the guard %s (it runs %s, this pgha is %s): %w", name, c.Image, img.Ref, err)
	}
	p.Progress.Info(fmt.Sprintf("  replacing the guard %s: it ran %s", name, c.Image))
	existing[name] = Container{Name: name, State: StateMissing}
	return nil
}

// GuardState is the guard's container and its latest decision.
type GuardState struct {
	Container string `json:"container"`
	// State is the engine's word on the container: running, exited (2), missing.
	State string `json:"state"`
	// Watching says the guard runs and is subscribed to the engine's events.
	Watching     bool          `json:"watching"`
	LastDecision *guard.Record `json:"lastDecision,omitempty"`
	// Records are the log lines read (not in JSON: status shows the last decision).
	Records []guard.Record `json:"-"`
}

// guardLogLines is how much of the guard's log is read back.
const guardLogLines = 200

// GuardStatus reads the guard's state and the end of its log.
func GuardStatus(ctx context.Context, docker *client.Client, topo topology.Cluster) (GuardState, error) {
	p := &Provisioner{Docker: docker}
	name := topo.ContainerName(topology.GuardNode)
	c, err := p.inspect(ctx, topo.Name, name)
	if err != nil {
		return GuardState{}, err
	}
	st := GuardState{Container: name, State: c.Describe()}
	if st.State == StateMissing {
		return st, nil
	}
	text, err := LogTail(ctx, docker, name, fmt.Sprint(guardLogLines))
	if err != nil {
		return st, fmt.Errorf("reading the guard's log: %w", err)
	}
	st.Records = guard.ParseLog(strings.NewReader(text))
	st.LastDecision = guard.LastDecision(st.Records)
	st.Watching = c.Running() && watching(st.Records)
	return st, nil
}

// watching says whether the guard's latest run has connected to the event
// stream and not lost it since.
func watching(recs []guard.Record) bool {
	for i := len(recs) - 1; i >= 0; i-- {
		switch recs[i].Event {
		case "connected":
			return true
		case "start", "disconnected", "stop":
			return false
		}
	}
	return false
}

// Health is the guard's row in the status table.
func (g GuardState) Health() string {
	if g.State != "running" {
		return "-"
	}
	h := "not watching yet"
	if g.Watching {
		h = "watching"
	}
	if g.LastDecision != nil {
		return h + "; last: " + g.LastDecision.Summary()
	}
	return h + "; no decision yet"
}
