//go:build !embedguard

package images

// embeddedGuard is the Linux pgha built into a release for another OS (see
// guardbin_embed.go); a plain build has none.
func embeddedGuard(string) []byte { return nil }
