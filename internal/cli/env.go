package cli

import (
	"fmt"
	"strings"

	"github.com/pgha/pgha/pkg/topology"
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
			_, acc, err := a.access(ctx, name)
			if err != nil {
				return err
			}
			topo := acc.Topo
			// PGPORT is the current primary's port; the first node's when none answers.
			port := topo.Patroni[0].PGPort
			if primary, _ := acc.Primary(ctx); primary != "" {
				n, _ := topo.PatroniNode(primary)
				port = n.PGPort
			}
			// DATABASE_URL goes through the router when the cluster has
			// one: one address that follows the primary; DATABASE_URL_DIRECT
			// is the multi-host DSN that finds the primary itself.
			urls := [][2]string{{"DATABASE_URL", acc.MultiHostURL()}}
			if topo.Router {
				urls = [][2]string{{"DATABASE_URL", acc.RouterURL()}, {"DATABASE_URL_DIRECT", acc.MultiHostURL()},
					{"DATABASE_URL_RO", acc.RouterReadOnlyURL()}, {"PGHA_ROUTER_STATS", acc.RouterStatsURL()}}
			}
			exports := [][2]string{
				{"PGHOST", acc.Host},
				{"PGPORT", fmt.Sprint(port)},
				{"PGUSER", topology.SuperUser},
				{"PGPASSWORD", acc.Creds.SuperuserPassword},
				{"PGDATABASE", "postgres"},
			}
			exports = append(exports, urls...)
			exports = append(exports, [][2]string{
				{"ETCDCTL_API", "3"},
				{"ETCDCTL_ENDPOINTS", strings.Join(acc.EtcdEndpoints(), ",")},
				// etcd serves TLS from the cluster's CA and requires a login: pgha's own user.
				{"ETCDCTL_CACERT", acc.Creds.CAFile},
				{"ETCDCTL_USER", acc.Creds.EtcdUser + ":" + acc.Creds.EtcdPassword},
				{"PGHA_REST_USER", topology.RESTUser},
				{"PGHA_REST_PASSWORD", acc.Creds.RESTPassword},
				{"AWS_ACCESS_KEY_ID", acc.Creds.S3AccessKey},
				{"AWS_SECRET_ACCESS_KEY", acc.Creds.S3SecretKey},
				{"AWS_ENDPOINT_URL", "https://" + acc.S3Addr()},
				{"AWS_CA_BUNDLE", acc.Creds.CAFile},
			}...)
			for _, e := range exports {
				fmt.Fprintf(a.stdout, "export %s=%s\n", e[0], shellQuote(e[1]))
			}
			return nil
		},
	}
	addNameFlag(cmd, &name)
	return cmd
}

// shellQuote quotes a value for POSIX shells.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
