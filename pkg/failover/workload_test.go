package failover

import (
	"testing"
	"time"
)

func TestGap(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := func(id int64, sent, done int, o Outcome) Write {
		return Write{ID: id, Sent: at(sent), Done: at(done), Outcome: o}
	}
	fault := at(1000)

	// A dying primary acknowledges one more write just after the fault; then
	// nothing until the new primary answers 20 s later.
	writes := []Write{
		w(1, 980, 985, Acked), w(2, 995, 998, Acked), w(3, 1001, 1010, Acked),
		w(4, 1020, 3020, Unknown), w(5, 3030, 4030, Failed),
		w(6, 21000, 21010, Acked), w(7, 21020, 21025, Acked),
	}
	gap, from, to, ok := Gap(writes, fault)
	if !ok || gap != 20*time.Second || !from.Equal(at(1010)) || !to.Equal(at(21010)) {
		t.Errorf("gap = %v from %v to %v ok %v", gap, from.Sub(t0), to.Sub(t0), ok)
	}

	// Writes resume only when one sent after the given time (RunFailover
	// passes the new leader's time) is acknowledged.
	newLeader := at(20500)
	if _, _, _, ok := Gap(writes[:5], newLeader); ok {
		t.Error("resumed before any write sent after the new leader was acknowledged")
	}
	if _, _, _, ok := Gap(writes, newLeader); !ok {
		t.Error("not resumed after a write on the new primary")
	}

	// A replica stop: writes never pause longer than their interval.
	var steady []Write
	for i := 0; i < 100; i++ {
		steady = append(steady, w(int64(i), 900+i*10, 902+i*10, Acked))
	}
	if gap, _, _, ok := Gap(steady, fault); !ok || gap != 10*time.Millisecond {
		t.Errorf("steady writes: gap %v ok %v", gap, ok)
	}
}

func TestCountAcked(t *testing.T) {
	ws := []Write{{Outcome: Acked}, {Outcome: Failed}, {Outcome: Unknown}, {Outcome: Acked}}
	if n := countAcked(ws); n != 2 {
		t.Errorf("countAcked = %d", n)
	}
}
