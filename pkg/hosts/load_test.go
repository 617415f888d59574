package hosts

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
)

// One load that stops reading early must not stop the others.
func TestFanOutSurvivesAnEndedLoad(t *testing.T) {
	data := strings.Repeat("0123456789", 100000)
	var writers []*pipeWriter
	got := make([]bytes.Buffer, 3)
	var wg sync.WaitGroup
	for k := range 3 {
		pr, pw := io.Pipe()
		writers = append(writers, &pipeWriter{w: pw})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k == 1 { // reads a little, then fails
				_, _ = io.CopyN(&got[k], pr, 1000)
				pr.CloseWithError(errLoadEnded)
				return
			}
			_, _ = io.Copy(&got[k], pr)
		}()
	}
	n, err := io.Copy(fanOut(writers), strings.NewReader(data))
	for _, w := range writers {
		w.w.Close()
	}
	wg.Wait()
	if err != nil || n != int64(len(data)) {
		t.Fatalf("copied %d, %v", n, err)
	}
	if got[0].String() != data || got[2].String() != data {
		t.Error("a live load missed data")
	}
	if !writers[1].dead || writers[0].dead {
		t.Error("dead flags")
	}
}

func TestFanOutFailsWhenEveryLoadEnded(t *testing.T) {
	pr, pw := io.Pipe()
	pr.CloseWithError(errLoadEnded)
	if _, err := io.Copy(fanOut{{w: pw}}, strings.NewReader("x")); err == nil {
		t.Fatal("no error")
	}
}
