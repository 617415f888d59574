package images

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgha/pgha/pkg/topology"
)

const (
	// GuardBinaryEnv names a Linux build of pgha for the guard image, for a
	// pgha that cannot run in the engine itself (macOS, another arch).
	GuardBinaryEnv = "PGHA_GUARD_BINARY"
	// guardBinaryName is the binary's name in the guard's build context.
	guardBinaryName = "pgha"
)

// guardBinary is the pgha binary that goes into the guard image.
type guardBinary struct {
	path   string
	words  string // where it came from, for people
	static bool   // no C library needed: the image is FROM scratch
}

// guardImage resolves the guard's image: pgha itself in a Linux container,
// tagged with a hash that covers the binary. The binary is, in order:
// $PGHA_GUARD_BINARY; the running pgha when the engine can run it (a static
// one alone in an image FROM scratch, one linked against the C library —
// `go install` with cgo on — on base, which has it); a Linux build embedded
// in a release binary for another OS. Otherwise the image is Unavailable,
// with the reason and the way out.
func (s *Supplier) guardImage(ctx context.Context, base string, offlineBase bool) (Image, error) {
	v, err := s.Engine.API.ServerVersion(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("asking the engine for its platform: %w", err)
	}
	bin, err := findGuardBinary(v.Os, v.Arch)
	if err != nil {
		return Image{Role: topology.RoleGuard, Source: "unavailable", Unavailable: err.Error()}, nil
	}
	sum, err := fileSHA256(bin.path)
	if err != nil {
		return Image{}, fmt.Errorf("hashing the guard binary %s: %w", bin.path, err)
	}
	spec := &buildSpec{dir: "guard", base: "scratch", inputs: "pgha=" + sum, extra: func(context.Context) (map[string][]byte, error) {
		data, err := os.ReadFile(bin.path)
		return map[string][]byte{guardBinaryName: data}, err
	}}
	words := bin.words
	if !bin.static {
		spec.base, spec.offlineBase = base, offlineBase
		words += " (linked against the C library, on " + base + ")"
	}
	return s.localImage(ctx, topology.RoleGuard, spec, words)
}

// findGuardBinary picks the binary for a guard on an engineOS/engineArch engine.
func findGuardBinary(engineOS, engineArch string) (guardBinary, error) {
	if engineOS != "linux" {
		return guardBinary{}, fmt.Errorf("the engine runs %s containers; the guard needs a linux engine; run without it: `pgha up --guard=false`", engineOS)
	}
	how := fmt.Sprintf("build one with `GOOS=linux GOARCH=%s go build -o pgha-linux ./cmd/pgha` and set %s=$PWD/pgha-linux, or run without the guard: `pgha up --guard=false`",
		engineArch, GuardBinaryEnv)
	if path := os.Getenv(GuardBinaryEnv); path != "" {
		static, err := checkGuardBinary(path, engineArch)
		if err != nil {
			return guardBinary{}, fmt.Errorf("the guard needs a linux/%s pgha binary, and %s=%s is not one: %v; %s", engineArch, GuardBinaryEnv, path, err, how)
		}
		return guardBinary{path: path, words: "$" + GuardBinaryEnv + " " + path, static: static}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return guardBinary{}, fmt.Errorf("cannot find the running pgha binary: %w", err)
	}
	static, err := checkGuardBinary(exe, engineArch)
	if err == nil {
		return guardBinary{path: exe, words: "the pgha binary " + exe, static: static}, nil
	}
	if data := embeddedGuard(engineArch); data != nil {
		path, werr := cacheEmbedded(data, engineArch)
		if werr == nil {
			return guardBinary{path: path, words: "the linux/" + engineArch + " pgha built into this release", static: true}, nil
		}
		err = fmt.Errorf("%v; writing the embedded linux binary: %v", err, werr)
	}
	return guardBinary{}, fmt.Errorf("the guard runs pgha itself in a linux/%s container, and this pgha (%s) cannot: %v; %s", engineArch, exe, err, how)
}

// elfMachines maps Go's architecture names to ELF machine types.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "386": elf.EM_386,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// checkGuardBinary says why a binary cannot run on a linux/engineArch engine
// (not Linux ELF, another architecture), and whether it is static (no
// program interpreter: it runs alone in an image FROM scratch).
func checkGuardBinary(path, engineArch string) (static bool, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("not a Linux (ELF) binary: %v", err)
	}
	defer f.Close()
	want, ok := elfMachines[engineArch]
	switch {
	case !ok:
		return false, fmt.Errorf("unsupported engine architecture %q", engineArch)
	case f.Machine != want:
		return false, fmt.Errorf("built for %s, the engine is %s", f.Machine, engineArch)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// cacheEmbedded writes an embedded guard binary to the user's cache, once.
func cacheEmbedded(data []byte, arch string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	path := filepath.Join(cache, "pgha", "guard-linux-"+arch+"-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, data, 0o755)
}

func fileSHA256(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
