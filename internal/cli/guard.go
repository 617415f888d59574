package cli

import (
	"context"
	"time"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newGuardCommand is the fencing guard's main process, run inside the
// cluster's guard container (hidden: `pgha up` starts it).
func (a *app) newGuardCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:    "guard",
		Short:  "Watch the engine and delete a dead primary's leader key (runs inside the guard container)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			b, topo, err := a.cluster(ctx, name, nil)
			if err != nil {
				return err
			}
			// etcd through the cluster network, under the members' host names,
			// as the guard's own user (credentials and CA copied in as files).
			etcd, err := guardEtcd(ctx, topo)
			if err != nil {
				return err
			}
			defer etcd.Close()
			g := &guard.Guard{Engine: b.Engine.API, Etcd: etcd, Topo: topo, Log: a.stdout}
			return g.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&name, "cluster", "", "the cluster to guard")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
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
