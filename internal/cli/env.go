package cli

import (
	"fmt"
	"strings"

	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/pgha/pgha/pkg/verify"
	"github.com/spf13/cobra"
)

func (a *app) newEnvCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print shell exports for psql, etcdctl and S3 clients: eval \"$(pgha env)\"",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, topo, err := a.cluster(ctx, name)
			if err != nil {
				return err
			}
			store, err := secrets.For(name)
			if err != nil {
				return err
			}
			sec, err := store.Load()
			if err != nil {
				return fmt.Errorf("reading the secrets of cluster %s from %s: %w", name, store.Dir, err)
			}
			// PGPORT is the current primary's port; the first node's when none answers.
			port := topo.Patroni[0].PGPort
			for _, n := range topo.Patroni {
				if st, err := verify.GetPatroni(ctx, n.RESTPort); err == nil && st.Leading() {
					port = n.PGPort
				}
			}
			var hosts []string
			for _, n := range topo.Patroni {
				hosts = append(hosts, fmt.Sprintf("127.0.0.1:%d", n.PGPort))
			}
			exports := [][2]string{
				{"PGHOST", "127.0.0.1"},
				{"PGPORT", fmt.Sprint(port)},
				{"PGUSER", topology.SuperUser},
				{"PGPASSWORD", sec.SuperuserPassword},
				{"PGDATABASE", "postgres"},
				{"DATABASE_URL", fmt.Sprintf("postgres://%s:%s@%s/postgres?target_session_attrs=read-write", topology.SuperUser, sec.SuperuserPassword, strings.Join(hosts, ","))},
				{"ETCDCTL_API", "3"},
				{"ETCDCTL_ENDPOINTS", strings.Join(topo.EtcdEndpointsHost(), ",")},
				{"PGHA_REST_USER", topology.RESTUser},
				{"PGHA_REST_PASSWORD", sec.RESTPassword},
				{"AWS_ACCESS_KEY_ID", sec.S3AccessKey},
				{"AWS_SECRET_ACCESS_KEY", sec.S3SecretKey},
				{"AWS_ENDPOINT_URL", fmt.Sprintf("https://127.0.0.1:%d", topo.ObjectStore.APIPort)},
				{"AWS_CA_BUNDLE", store.CAPath()},
			}
			for _, e := range exports {
				fmt.Fprintf(a.stdout, "export %s=%s\n", e[0], shellQuote(e[1]))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", topology.DefaultName, "cluster name")
	return cmd
}

// shellQuote quotes a value for POSIX shells.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
