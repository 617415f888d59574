package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/pgha/pgha/pkg/poll"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/pgha/pgha/pkg/verify"
	"github.com/spf13/cobra"
)

type verifyFlags struct {
	name    string
	output  string
	timeout time.Duration
	maxLag  int64
}

func (a *app) newVerifyCommand() *cobra.Command {
	f := &verifyFlags{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check etcd, Patroni, PostgreSQL replication and the object store; exit 0 only when all pass",
		Long: `Run every check of the guide in one command, through the loopback ports:
  etcd        every member healthy, one leader, the member list matches the topology, a key written and read
  patroni     every node answers, exactly one primary, every other node streaming, one timeline
  postgres    pg_is_in_recovery() agrees with Patroni on every node, pg_stat_replication lists every
              replica streaming with lag under --max-lag, a marker row written on the primary is
              read on every replica (table pgha_verify; the row is deleted afterwards), and the
              primary's current WAL segment archived to the object store by pgBackRest
  objectstore an authenticated S3 request over TLS, the backup bucket exists
Exit code 0 when every check passes, 1 otherwise. Never runs past --timeout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := a.verify(cmd.Context(), f.name, f.timeout, f.maxLag)
			if err != nil {
				return err
			}
			if f.output == "json" {
				if err := printJSON(a.stdout, rep); err != nil {
					return err
				}
			} else {
				a.printChecks(rep)
			}
			if !rep.OK {
				return silentError{fmt.Errorf("%d checks failed", len(rep.Failed()))}
			}
			return nil
		},
	}
	addNameFlag(cmd, &f.name)
	addOutputFlag(cmd, &f.output)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "give up on checks still waiting after this long")
	cmd.Flags().Int64Var(&f.maxLag, "max-lag", 1<<20, "largest replication lag in bytes that passes")
	return cmd
}

// verify loads the cluster and its credentials and runs the checks.
func (a *app) verify(ctx context.Context, name string, timeout time.Duration, maxLag int64) (verify.Report, error) {
	t, err := a.verifyTarget(ctx, name, maxLag)
	if err != nil {
		return verify.Report{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return verify.Run(ctx, t), nil
}

// verifyTarget is what the checks need to know of a cluster.
func (a *app) verifyTarget(ctx context.Context, name string, maxLag int64) (verify.Target, error) {
	b, acc, err := a.access(ctx, name)
	if err != nil {
		return verify.Target{}, err
	}
	topo := acc.Topo
	kind, err := b.StoreKind(ctx, topo)
	if err != nil {
		return verify.Target{}, err
	}
	if kind == "" { // the container is gone; name the default kind in messages
		kind = topology.StoreVersityGW
	}
	return verify.Target{
		Access:    acc,
		MaxLag:    maxLag,
		StoreKind: kind,
		ContainerState: func(ctx context.Context, node string) string {
			cctx, cancel := poll.Detached(ctx, 3*time.Second)
			defer cancel()
			return b.ContainerState(cctx, topo, node)
		},
	}, nil
}

// printChecks renders a report: one row per check, then a verdict on stderr.
func (a *app) printChecks(rep verify.Report) {
	var rows [][]string
	failed := 0
	for _, c := range rep.Checks {
		mark := "✓"
		if !c.OK {
			mark = "✗"
			failed++
		}
		rows = append(rows, []string{mark, c.Group, c.Name, c.Detail, fmt.Sprintf("%.0fms", c.DurationMS)})
	}
	a.printTable([]string{"", "GROUP", "CHECK", "DETAIL", "TOOK"}, rows, "DETAIL", "CHECK")
	if failed == 0 {
		fmt.Fprintf(a.stderr, "cluster %s: all %d checks passed (%.0f ms)\n", rep.Cluster, len(rep.Checks), rep.DurationMS)
	} else {
		fmt.Fprintf(a.stderr, "cluster %s: %d of %d checks failed\n", rep.Cluster, failed, len(rep.Checks))
	}
}
