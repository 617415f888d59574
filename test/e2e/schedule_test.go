package e2e

import (
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The tests run in parallel, but only a few at a time: each holds a cluster
// whose idle cost alone is about a quarter of a core here, and on two cores
// more than three at once made every test slower and some of them flaky.
// Waiting tests are let in longest first, so the longest do not start last.
// PGHA_E2E_SLOTS sets how many slots there are (go test's -parallel must be
// at least that: the Makefile gives it room); the multi-host tests take two,
// for three engines in containers and a cluster on them.
var slots = newScheduler(envInt("PGHA_E2E_SLOTS", 3))

// expected is about how long each test takes alone on this machine, in
// seconds; a test not listed counts as a minute.
var expected = map[string]int{
	"TestMultiHost": 360, "TestMatrix": 400, "TestFailover": 320, "TestBackupAndRestore": 200,
	"TestGuard": 80, "TestDay2": 135, "TestRestoreSafety": 115, "TestGuardTwoClusters": 100,
	"TestTables": 90, "TestSecurity": 85, "TestVerifyInspectEnv": 85, "TestInterruptedFaultsHeal": 85,
	"TestGuardLeastPrivilege": 60, "TestContextsAndGoInstall": 60, "TestUpCompletesAPartialCluster": 50,
	"TestFiveNodeExample": 45, "TestUpBuildsAWorkingCluster": 45, "TestInterruptedUpResumes": 40,
	"TestRouterOff": 35, "TestUpRefusesForeignNames": 5, "TestUpRefusesABusyPort": 5, "TestBadInput": 1,
}

// weight is how many slots a test takes; 1 when not listed.
var weight = map[string]int{"TestMultiHost": 2}

// parallel runs t beside the other parallel tests once a slot is free.
func parallel(t *testing.T) {
	t.Parallel()
	release := slots.acquire(t.Name())
	t.Cleanup(release)
}

type scheduler struct {
	mu      sync.Mutex
	free    int
	size    int
	open    bool // false for a moment after the first arrival, so that all arrive
	waiting []waiter
}

type waiter struct {
	seconds, weight int
	ready           chan struct{}
}

func newScheduler(n int) *scheduler { return &scheduler{free: max(1, n), size: max(1, n)} }

// acquire waits for a slot and returns its release.
func (s *scheduler) acquire(name string) func() {
	w := waiter{seconds: 60, weight: 1, ready: make(chan struct{})}
	if sec, ok := expected[name]; ok {
		w.seconds = sec
	}
	if n, ok := weight[name]; ok {
		w.weight = min(n, s.size)
	}
	s.mu.Lock()
	if !s.open && len(s.waiting) == 0 {
		// go test releases the parallel tests together: let them all
		// line up before the first is let in.
		time.AfterFunc(200*time.Millisecond, func() {
			s.mu.Lock()
			s.open = true
			s.dispatch()
			s.mu.Unlock()
		})
	}
	s.waiting = append(s.waiting, w)
	s.dispatch()
	s.mu.Unlock()
	<-w.ready
	return func() {
		s.mu.Lock()
		s.free += w.weight
		s.dispatch()
		s.mu.Unlock()
	}
}

// dispatch lets the longest waiting tests in while they fit in the free slots.
func (s *scheduler) dispatch() {
	for s.open && len(s.waiting) > 0 {
		longest := 0
		for i, w := range s.waiting {
			if w.seconds > s.waiting[longest].seconds {
				longest = i
			}
		}
		w := s.waiting[longest]
		if w.weight > s.free {
			return
		}
		close(w.ready)
		s.waiting = append(s.waiting[:longest], s.waiting[longest+1:]...)
		s.free -= w.weight
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
