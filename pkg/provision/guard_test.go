package provision

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// writeELF writes a minimal 64-bit little-endian ELF executable header for
// machine, with a PT_INTERP program header when dynamic.
func writeELF(t *testing.T, machine elf.Machine, dynamic bool) string {
	t.Helper()
	var b bytes.Buffer
	phnum := uint16(0)
	if dynamic {
		phnum = 1
	}
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: phnum,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	if err := binary.Write(&b, binary.LittleEndian, hdr); err != nil {
		t.Fatal(err)
	}
	if dynamic {
		if err := binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_INTERP)}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "pgha")
	if err := os.WriteFile(path, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckGuardBinary(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "pgha-darwin")
	if err := os.WriteFile(notELF, []byte("\xcf\xfa\xed\xfe Mach-O"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, os, arch, want string
	}{
		{"static amd64", writeELF(t, elf.EM_X86_64, false), "linux", "amd64", ""},
		{"static arm64", writeELF(t, elf.EM_AARCH64, false), "linux", "arm64", ""},
		{"another architecture", writeELF(t, elf.EM_X86_64, false), "linux", "arm64", "built for EM_X86_64, the engine is arm64"},
		{"built with cgo", writeELF(t, elf.EM_X86_64, true), "linux", "amd64", "dynamically linked"},
		{"a macOS binary", notELF, "linux", "amd64", "not a Linux (ELF) binary"},
		{"a Windows engine", writeELF(t, elf.EM_X86_64, false), "windows", "amd64", "needs a linux engine"},
		{"an unknown architecture", writeELF(t, elf.EM_X86_64, false), "linux", "mips", `unsupported engine architecture "mips"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkGuardBinary(tc.path, tc.os, tc.arch)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkGuardBinary = %v, want %q", err, tc.want)
			}
		})
	}
}

// A binary the engine cannot run names itself and both ways out.
func TestGuardBinaryErrorSaysWhatToDo(t *testing.T) {
	t.Setenv(GuardBinaryEnv, writeELF(t, elf.EM_X86_64, true))
	_, err := guardBinary("linux", "amd64")
	for _, want := range []string{GuardBinaryEnv + "=", "dynamically linked", "GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -o pgha-linux ./cmd/pgha", "--guard=false"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// The guard's container: least access, the socket read-only, no port.
func TestGuardSpec(t *testing.T) {
	topo, _ := topology.Generate("lab", 3, 3)
	s := guardSpec(topo, Image{Ref: "pgha/guard:abc"})
	h := s.host
	if s.name != "lab-guard" || s.volume != "" || len(s.config.ExposedPorts) != 0 || len(h.PortBindings) != 0 {
		t.Errorf("name %s, volume %q, ports %v %v", s.name, s.volume, s.config.ExposedPorts, h.PortBindings)
	}
	if !h.ReadonlyRootfs || len(h.CapDrop) != 1 || h.CapDrop[0] != "ALL" || len(h.SecurityOpt) != 1 || h.SecurityOpt[0] != "no-new-privileges:true" {
		t.Errorf("hardening: %+v", h)
	}
	if len(h.Binds) != 1 || h.Binds[0] != "/var/run/docker.sock:/var/run/docker.sock:ro" || h.RestartPolicy.Name != restartPolicy {
		t.Errorf("binds %v, restart %v", h.Binds, h.RestartPolicy)
	}
	if s.config.Labels[topology.LabelCluster] != "lab" || s.config.Labels[topology.LabelRole] != topology.RoleGuard {
		t.Errorf("labels %v", s.config.Labels)
	}
	if strings.Join(s.config.Cmd, " ") != "--cluster lab" {
		t.Errorf("cmd %v", s.config.Cmd)
	}
	count := func() int {
		return len(byRole(clusterSpecs(topo, ImageSet{}, secrets.Secrets{}, secrets.Store{}), topology.RoleGuard))
	}
	if n := count(); n != 1 {
		t.Errorf("%d guard containers with the guard on", n)
	}
	topo.Guard = false
	if n := count(); n != 0 {
		t.Errorf("%d guard containers with guard: false", n)
	}
}

func TestWatching(t *testing.T) {
	rec := func(events ...string) []guard.Record {
		var out []guard.Record
		for _, e := range events {
			out = append(out, guard.Record{Event: e})
		}
		return out
	}
	cases := map[string]struct {
		recs []guard.Record
		want bool
	}{
		"connected":                   {rec("start", "connected", "reconcile"), true},
		"not yet connected":           {rec("start"), false},
		"dropped":                     {rec("start", "connected", "disconnected"), false},
		"reconnected":                 {rec("start", "connected", "disconnected", "connected"), true},
		"a new run not yet connected": {rec("start", "connected", "stop", "start"), false},
		"no log":                      {nil, false},
	}
	for name, tc := range cases {
		if got := watching(tc.recs); got != tc.want {
			t.Errorf("%s: watching = %v", name, got)
		}
	}
}
