package images

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		name, path, arch, want string
		static                 bool
	}{
		{"static amd64", writeELF(t, elf.EM_X86_64, false), "amd64", "", true},
		{"static arm64", writeELF(t, elf.EM_AARCH64, false), "arm64", "", true},
		{"built with cgo: runs on a base with a C library", writeELF(t, elf.EM_X86_64, true), "amd64", "", false},
		{"another architecture", writeELF(t, elf.EM_X86_64, false), "arm64", "built for EM_X86_64, the engine is arm64", false},
		{"a macOS binary", notELF, "amd64", "not a Linux (ELF) binary", false},
		{"an unknown architecture", writeELF(t, elf.EM_X86_64, false), "mips", `unsupported engine architecture "mips"`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			static, err := checkGuardBinary(tc.path, tc.arch)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) || static != tc.static {
				t.Errorf("checkGuardBinary = %v, %v; want %q, static %v", static, err, tc.want, tc.static)
			}
		})
	}
}

// A binary the engine cannot run names itself and both ways out; a Windows
// engine is refused whatever the binary.
func TestGuardBinaryErrorSaysWhatToDo(t *testing.T) {
	t.Setenv(GuardBinaryEnv, writeELF(t, elf.EM_AARCH64, false))
	_, err := findGuardBinary("linux", "amd64")
	for _, want := range []string{GuardBinaryEnv + "=", "built for EM_AARCH64", "GOOS=linux GOARCH=amd64 go build -o pgha-linux ./cmd/pgha", "--guard=false"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if _, err := findGuardBinary("windows", "amd64"); err == nil || !strings.Contains(err.Error(), "needs a linux engine") {
		t.Errorf("a windows engine: %v", err)
	}
}

// A dynamically linked pgha (go install, cgo on) is used as is.
func TestDynamicBinaryIsAccepted(t *testing.T) {
	path := writeELF(t, elf.EM_X86_64, true)
	t.Setenv(GuardBinaryEnv, path)
	b, err := findGuardBinary("linux", "amd64")
	if err != nil || b.static || b.path != path {
		t.Errorf("got %+v, %v; want the dynamic binary", b, err)
	}
}
