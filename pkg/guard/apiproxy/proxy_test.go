package apiproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A fake engine behind the proxy: it records what reaches it, and its
// event stream sends one event, then waits.
func TestHandlerForwardsAllowedAndRefusesTheRest(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var reached []string
	release := make(chan struct{})
	engine := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/events") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"die"}` + "\n"))
			w.(http.Flusher).Flush()
			<-release
			return
		}
		_, _ = w.Write([]byte(`[]`))
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	engineSock := filepath.Join(dir, "engine.sock")
	el, err := Listen(engineSock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = Serve(ctx, el, engine) }()
	var refusals []string
	proxySock := filepath.Join(dir, "sub", "proxy.sock")
	pl, err := Listen(proxySock)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = Serve(ctx, pl, Handler(Policy{Cluster: "lab"}, UnixTransport(engineSock), func(r *http.Request, reason string) {
			mu.Lock()
			refusals = append(refusals, reason)
			mu.Unlock()
		}))
	}()
	client := &http.Client{Transport: UnixTransport(proxySock)}

	resp, err := client.Post("http://docker/v1.41/containers/create", "application/json", strings.NewReader(`{"Image":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var msg struct{ Message string }
	_ = json.NewDecoder(resp.Body).Decode(&msg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(msg.Message, "guard API proxy: POST is not allowed") {
		t.Errorf("create: %d %q", resp.StatusCode, msg.Message)
	}

	list := "http://docker/v1.41/containers/json?all=1&filters=" + url.QueryEscape(`{"label":{"io.pgha.cluster=lab":true}}`)
	resp, err = client.Get(list)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("list: %d", resp.StatusCode)
	}

	// The first event arrives while the stream stays open: no buffering.
	resp, err = client.Get("http://docker/v1.41/events?filters=" + url.QueryEscape(`{"label":{"io.pgha.cluster=lab":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if !strings.Contains(line, "die") {
			t.Errorf("event %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Error("the event did not come through while the stream was open")
	}
	close(release)
	resp.Body.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(reached) != 2 || !strings.HasPrefix(reached[0], "GET /v1.41/containers/json?all=1&filters=") || !strings.HasPrefix(reached[1], "GET /v1.41/events?filters=") {
		t.Errorf("reached the engine: %q", reached)
	}
	if len(refusals) != 1 {
		t.Errorf("refusals %q", refusals)
	}
}
