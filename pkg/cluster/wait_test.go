package cluster

import (
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestDeathOf(t *testing.T) {
	cases := []struct {
		name string
		st   *container.State
		why  string
		dead bool
	}{
		{"running", &container.State{Status: container.StateRunning, Running: true}, "", false},
		// etcd's members start in turn: the wait watches one not started yet.
		{"created, not started yet", &container.State{Status: container.StateCreated}, "", false},
		{"exited", &container.State{Status: container.StateExited, ExitCode: 0}, "exited with code 0", true},
		{"exited with an error", &container.State{Status: container.StateExited, ExitCode: 2}, "exited with code 2", true},
		{"OOM-killed", &container.State{Status: container.StateExited, ExitCode: 137, OOMKilled: true}, "was killed for lack of memory (OOM)", true},
	}
	for _, c := range cases {
		why, dead := deathOf(c.st)
		if why != c.why || dead != c.dead {
			t.Errorf("%s: deathOf = %q, %v; want %q, %v", c.name, why, dead, c.why, c.dead)
		}
	}
}
