package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/poll"
)

// checkRouter: the router's primary port reaches a writable primary (not in
// recovery, and a write commits), its replica port a node in recovery, and
// its stats page agrees. Only for clusters with the router on.
func checkRouter(ctx context.Context, t Target, out *rows) {
	if !t.Topo.Router {
		return
	}
	timed(out, "router", fmt.Sprintf("primary port %d", t.Topo.RouterPorts.Primary), func() (string, error) {
		return routerSession(ctx, t, false)
	})
	if len(t.Topo.Patroni) > 1 {
		timed(out, "router", fmt.Sprintf("replica port %d", t.Topo.RouterPorts.Replicas), func() (string, error) {
			return routerSession(ctx, t, true)
		})
	}
	timed(out, "router", fmt.Sprintf("stats page %d", t.Topo.RouterPorts.Stats), func() (string, error) {
		rb, err := t.RouterStats(ctx)
		if err != nil {
			return "", err
		}
		if len(rb.Primary) != 1 {
			return "", fmt.Errorf("%d nodes behind the primary port (%v), want 1", len(rb.Primary), rb.Primary)
		}
		return fmt.Sprintf("primary %s, replicas %v", rb.Primary[0], rb.Replicas), nil
	})
}

// routerSession connects through the router and says which node answered.
func routerSession(ctx context.Context, t Target, readOnly bool) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	port := t.Topo.RouterPorts.Primary
	if readOnly {
		port = t.Topo.RouterPorts.Replicas
	}
	conn, err := t.ConnectRouter(cctx, readOnly)
	if err != nil {
		return "", fmt.Errorf("connecting through %s: %v", t.Addr(port), clients.PGErr(err))
	}
	defer func() {
		dctx, cancel := poll.Detached(ctx, 3*time.Second)
		defer cancel()
		conn.Close(dctx)
	}()
	var inRecovery bool
	var server string
	if err := conn.QueryRow(cctx, clients.WhoAmI).Scan(&inRecovery, &server); err != nil {
		return "", fmt.Errorf("querying through %s: %v", t.Addr(port), clients.PGErr(err))
	}
	if readOnly {
		if !inRecovery {
			return "", fmt.Errorf("%s answered from %s, which is not in recovery: the replica port reached a primary", t.Addr(port), server)
		}
		return fmt.Sprintf("%s reaches %s, in recovery", t.Addr(port), server), nil
	}
	if inRecovery {
		return "", fmt.Errorf("%s answered from %s, which is in recovery: the primary port reached a replica", t.Addr(port), server)
	}
	// A temporary table proves a write commits and leaves nothing behind.
	if _, err := conn.Exec(cctx, "CREATE TEMP TABLE pgha_router_check (x int); INSERT INTO pgha_router_check VALUES (1)"); err != nil {
		return "", fmt.Errorf("writing through %s: %v", t.Addr(port), clients.PGErr(err))
	}
	return fmt.Sprintf("%s reaches %s, writable", t.Addr(port), server), nil
}
