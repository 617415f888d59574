package cli

import (
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/guard"
	"github.com/spf13/cobra"
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
			// etcd through the cluster network, under the members' host names.
			etcd, err := clients.NewEtcd(topo.EtcdEndpointsInternal())
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
