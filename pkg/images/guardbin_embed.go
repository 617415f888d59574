//go:build embedguard

package images

import _ "embed"

// A release for macOS drives a Linux engine (Docker Desktop, colima), whose
// guard needs a Linux pgha: .goreleaser.yaml builds them into guardbin/
// first and builds the macOS binaries with -tags embedguard.

//go:embed guardbin/pgha-linux-amd64
var guardLinuxAMD64 []byte

//go:embed guardbin/pgha-linux-arm64
var guardLinuxARM64 []byte

func embeddedGuard(arch string) []byte {
	switch arch {
	case "amd64":
		return guardLinuxAMD64
	case "arm64":
		return guardLinuxARM64
	}
	return nil
}
