package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/progress"
)

// VersityGWVersion is the versitygw release built when MinIO is unavailable.
const VersityGWVersion = "v1.8.0"

const versityGWModule = "github.com/versity/versitygw/cmd/versitygw"

// versityGWContext returns the build-context hook that adds a static versitygw
// binary, built with the Go toolchain for the engine's architecture and kept in
// the user's cache so that it is built once.
func versityGWContext(s *Supplier) func(ctx context.Context) (map[string][]byte, error) {
	return func(ctx context.Context) (map[string][]byte, error) {
		info, err := s.Engine.API.Info(ctx)
		if err != nil {
			return nil, err
		}
		arch := map[string]string{"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "amd64": "amd64"}[info.Architecture]
		if arch == "" {
			return nil, fmt.Errorf("versitygw: unsupported engine architecture %q", info.Architecture)
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(cache, "pgha", "versitygw-"+VersityGWVersion+"-linux-"+arch)
		bin := filepath.Join(dir, "versitygw")
		if _, err := os.Stat(bin); err != nil {
			if err := goInstall(ctx, s, dir, arch); err != nil {
				return nil, err
			}
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		return map[string][]byte{"versitygw": data}, nil
	}
}

// goInstall builds versitygw with `go build` into dir.
func goInstall(ctx context.Context, s *Supplier, dir, arch string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("the object store image is built from versitygw's Go module and needs the Go toolchain (1.25 or newer) on PATH; install Go, or load " + UpstreamMinIO + " into the engine")
	}
	s.Progress.Detail("go install " + versityGWModule + "@" + VersityGWVersion)
	start := time.Now()
	tmp, err := os.MkdirTemp("", "pgha-versitygw-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, gobin, "install", "-trimpath", "-ldflags=-s -w -X main.Version="+VersityGWVersion, versityGWModule+"@"+VersityGWVersion)
	// go install refuses GOBIN for cross builds, so the binary goes to a
	// throwaway GOPATH while the module cache stays the user's own.
	modcache, err := exec.CommandContext(ctx, gobin, "env", "GOMODCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOBIN=", "GOPATH="+tmp,
		"GOMODCACHE="+strings.TrimSpace(string(modcache)), "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building versitygw %s with go install failed: %v\n%s", VersityGWVersion, err, strings.TrimSpace(string(out)))
	}
	// A cross-compiled go install lands in GOBIN/GOOS_GOARCH.
	built := filepath.Join(tmp, "bin", "versitygw")
	if _, err := os.Stat(built); err != nil {
		built = filepath.Join(tmp, "bin", "linux_"+arch, "versitygw")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	s.Progress.Detail(fmt.Sprintf("built versitygw in %s", progress.Since(start)))
	return os.Rename(built, filepath.Join(dir, "versitygw"))
}
