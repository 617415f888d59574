package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/guard/apiproxy"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newGuardCommand is the fencing guard's main process, run inside the
// cluster's guard container (hidden: `pgha up` starts it). It is given the
// cluster's topology and reaches the engine only through its API proxy.
func (a *app) newGuardCommand() *cobra.Command {
	var raw, socket string
	cmd := &cobra.Command{
		Use:    "guard",
		Short:  "Watch the engine and delete a dead primary's leader key (runs inside the guard container)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			topo := topology.Cluster{}
			if err := json.Unmarshal([]byte(raw), &topo); err != nil {
				return fmt.Errorf("--topology: %w", err)
			}
			api, err := guardClient(socket)
			if err != nil {
				return err
			}
			defer api.Close()
			waitForProxy(ctx, api)
			// etcd through the cluster network, under the members' host names,
			// as the guard's own user (credentials and CA copied in as files).
			etcd, err := guardEtcd(ctx, topo)
			if err != nil {
				return err
			}
			defer etcd.Close()
			g := &guard.Guard{Engine: api, Etcd: etcd, Config: guard.ConfigFor(topo), Log: a.stdout}
			return g.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&raw, "topology", "", "the cluster to guard, as JSON (pgha up passes it)")
	cmd.Flags().StringVar(&socket, "engine-socket", guard.APISocket, "the unix socket of the guard's engine API proxy")
	_ = cmd.MarkFlagRequired("topology")
	cmd.AddCommand(a.newGuardProxyCommand(), a.newGuardAPICommand())
	return cmd
}

// waitForProxy gives the proxy, started beside the guard, a few seconds to
// listen; past them the guard's own reconnection takes over.
func waitForProxy(ctx context.Context, api *client.Client) {
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := api.Ping(pctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// guardClient is a Docker client on the proxy's socket.
func guardClient(socket string) (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost("unix://"+socket), client.WithAPIVersionNegotiation())
}

// newGuardProxyCommand runs the guard's engine API proxy, in its own
// container: the only one with the engine's socket.
func (a *app) newGuardProxyCommand() *cobra.Command {
	var name, listen, engineSocket string
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Serve the guard's read-only view of the engine API (runs inside the guard-proxy container)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := apiproxy.Listen(listen)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", listen, err)
			}
			logf := func(event, reason string) {
				line, _ := json.Marshal(guard.Record{Time: time.Now().UTC(), Event: event, Reason: reason})
				fmt.Fprintln(a.stdout, string(line))
			}
			logf("start", fmt.Sprintf("serving the engine at %s on %s to the guard of cluster %s: ping, version, and the events and container list of the cluster only", engineSocket, listen, name))
			h := apiproxy.Handler(apiproxy.Policy{Cluster: name}, apiproxy.UnixTransport(engineSocket), func(r *http.Request, reason string) {
				logf("refused", r.Method+" "+r.URL.RequestURI()+": "+reason)
			})
			return apiproxy.Serve(cmd.Context(), l, h)
		},
	}
	cmd.Flags().StringVar(&name, "cluster", "", "the one cluster whose events and containers the guard may see")
	cmd.Flags().StringVar(&listen, "listen", guard.APISocket, "the unix socket to serve on")
	cmd.Flags().StringVar(&engineSocket, "engine", "/var/run/docker.sock", "the engine's unix socket")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}

// newGuardAPICommand sends one raw request through the guard's proxy and
// prints the answer: how to see, from inside the guard's container, what the
// guard may and may not do (`docker exec guard /pgha guard api POST /containers/create`).
func (a *app) newGuardAPICommand() *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "api METHOD PATH [BODY]",
		Short: "Send one request to the engine API as the guard sees it, and print the answer",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body io.Reader = http.NoBody
			if len(args) == 3 {
				body = strings.NewReader(args[2])
			}
			return guardAPI(cmd.Context(), a.stdout, socket, args[0], args[1], body)
		},
	}
	cmd.Flags().StringVar(&socket, "engine-socket", guard.APISocket, "the unix socket of the guard's engine API proxy")
	return cmd
}

func guardAPI(ctx context.Context, out io.Writer, socket, method, path string, body io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(method), "http://docker"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: apiproxy.UnixTransport(socket)}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Fprintf(out, "HTTP %s\n", resp.Status)
	if _, err := io.Copy(out, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%s %s: %s", req.Method, path, resp.Status)
	}
	return nil
}

// guardEtcd logs in to etcd as the guard. Logging in needs a member that
// answers: it retries for a while rather than exit on a slow start.
func guardEtcd(ctx context.Context, topo topology.Cluster) (*clientv3.Client, error) {
	var urls []string
	for _, e := range topo.Etcd {
		urls = append(urls, topology.EtcdURL(e.Name, topology.EtcdClientPort))
	}
	var err error
	for range 30 {
		var cli *clientv3.Client
		if cli, err = clients.EtcdFromFiles(urls, topology.GuardCAFile, topology.GuardEtcdUserFile); err == nil {
			return cli, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil, err
}
