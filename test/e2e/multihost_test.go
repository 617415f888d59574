package e2e

import "testing"

// TestMultiHost runs the tests that make Docker engines in containers, one
// after another: each runs three engines and loads images into them, which
// is as much as this machine takes beside the single-engine tests running
// in parallel with it.
func TestMultiHost(t *testing.T) {
	parallel(t)
	t.Run("HostFaults", testHostFaults)
	t.Run("Swarm", testSwarm)
}
