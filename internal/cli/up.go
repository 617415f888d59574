package cli

import (
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/ops"
	"github.com/pgha/pgha/pkg/topology"

	"github.com/spf13/cobra"
)

type upFlags struct {
	topology topologyFlags
	swarm    bool
	hosts    string
	timeout  time.Duration
	output   string
}

func (a *app) newUpCommand() *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build images if needed and bring the cluster up until it is ready",
		Long: `Build the images that are missing, create the network, volumes and containers that
are missing, start what is stopped, and wait until every etcd member is healthy, one
Patroni node is the primary, every replica streams, the object store answers over TLS
and the router (HAProxy: 127.0.0.1:5000 the primary, 5001 the replicas) follows them.
On a running cluster it changes nothing.`,
		Example: "  pgha up\n  pgha up -f examples/five-node.yaml\n  pgha up --name lab2 --port-offset 100",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st := a.newStatus()
			defer st.Close()
			b, err := a.backendFor(ctx, f.topology.name, st)
			if err != nil {
				return err
			}
			if (f.swarm || f.hosts != "") && !b.OnSwarm() {
				s, err := a.swarmFor(ctx, f.hosts, st)
				if err != nil {
					return err
				}
				b = s.Docker
			}
			topo, warnings, err := f.topology.resolve(ctx, cmd, b)
			if err != nil {
				return err
			}
			if f.swarm || f.hosts != "" {
				topo.Engine = topology.EngineSwarm
			}
			if topo.OnSwarm() && !b.OnSwarm() {
				s, err := a.swarmFor(ctx, f.hosts, st)
				if err != nil {
					return err
				}
				b = s.Docker
			}
			// A pending restore owns the Patroni nodes: up would bootstrap
			// an empty cluster over the restore.
			if p, err := ops.PendingRestore(topo.Name); err != nil {
				return err
			} else if p != nil {
				return ops.ErrPending(topo.Name, p)
			}
			for _, w := range warnings {
				st.Warn(w)
			}
			start := time.Now()
			res, err := b.Up(ctx, topo, f.timeout)
			if err != nil {
				return err
			}
			if res.Changed {
				st.Info(fmt.Sprintf("Cluster %s is ready (%s)", topo.Name, time.Since(start).Round(100*time.Millisecond)))
			} else {
				st.Info(fmt.Sprintf("Cluster %s is already up and ready; nothing changed", topo.Name))
			}
			return a.showStatus(cmd, topo.Name, f.output)
		},
	}
	f.topology.register(cmd)
	cmd.Flags().BoolVar(&f.swarm, "swarm", false, "run the cluster as services of a Docker Swarm: the swarm the engine manages, or the test hosts of `pgha hosts create` (one etcd and one Patroni per node by default)")
	cmd.Flags().StringVar(&f.hosts, "hosts", "", "with --swarm: the prefix of the test hosts to deploy on (default: the only ones)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 3*time.Minute, "how long to wait for the cluster to be ready (image builds not included)")
	addOutputFlag(cmd, &f.output)
	return cmd
}
