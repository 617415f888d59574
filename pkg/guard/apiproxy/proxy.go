package apiproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"time"
)

// Handler forwards the requests the policy allows to the engine behind
// transport and answers every other one 403 with the reason, in the
// engine's own error shape ({"message": ...}), so that a Docker client
// prints it. refused, when set, hears of each refusal.
func Handler(p Policy, transport http.RoundTripper, refused func(r *http.Request, reason string)) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Path and query were set from the checked request below.
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "http", "docker", "docker"
		},
		Transport: transport,
		// The event stream must reach the guard as each event happens.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "guard API proxy: the engine did not answer: "+err.Error())
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, query, err := p.Check(r)
		if err != nil {
			if refused != nil {
				refused(r, err.Error())
			}
			writeError(w, http.StatusForbidden, "guard API proxy: "+err.Error())
			return
		}
		r = r.Clone(r.Context())
		r.URL.Path, r.URL.RawPath, r.URL.RawQuery = path, "", query
		r.Body, r.ContentLength = http.NoBody, 0
		rp.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// UnixTransport talks HTTP to the engine's unix socket.
func UnixTransport(socket string) http.RoundTripper {
	d := net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 90 * time.Second,
	}
}

// Listen opens the proxy's unix socket at path, replacing a stale one left
// by an earlier run, readable and writable by everyone who can reach the
// directory: the directory is shared with the guard's container only.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The guard runs as another user than the proxy.
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Serve runs the proxy on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
