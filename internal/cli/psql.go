package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/pgha/pgha/pkg/ops"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
)

func (a *app) newPsqlCommand() *cobra.Command {
	var name string
	var primary, replica bool
	cmd := &cobra.Command{
		Use:   "psql [NODE | --primary | --replica] [-- PSQL-ARGS...]",
		Short: "Open psql on a node as the superuser, no password typed (default: the primary)",
		Long: `Run this machine's psql against a node's published PostgreSQL port, logged in as the
superuser. The password is handed to psql in its own environment (PGPASSWORD), never on the
command line. Without NODE it connects to the current primary; --replica picks a streaming
replica. Arguments after -- go to psql.`,
		Example: "  pgha psql\n  pgha psql patroni3\n  pgha psql --replica -- -c 'SELECT pg_is_in_recovery()'",
		Args: func(cmd *cobra.Command, args []string) error {
			before := args
			if n := cmd.ArgsLenAtDash(); n >= 0 {
				before = args[:n]
			}
			if len(before) > 1 {
				return usageError{fmt.Errorf("one NODE at most (got %v); psql's own arguments go after --", before)}
			}
			if len(before) == 1 && (primary || replica) || primary && replica {
				return usageError{errors.New("give one of NODE, --primary or --replica")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var node string
			psqlArgs := args
			if n := cmd.ArgsLenAtDash(); n >= 0 {
				psqlArgs = args[n:]
				if n == 1 {
					node = args[0]
				}
			} else if len(args) == 1 {
				node, psqlArgs = args[0], nil
			}
			o, err := a.ops(ctx, name, nil)
			if err != nil {
				return err
			}
			if node != "" {
				if node, err = ops.Node(o.Topo, node); err != nil {
					return err
				}
			} else {
				p, replicas, err := o.Roles(ctx)
				switch {
				case replica && len(replicas) == 0:
					return fmt.Errorf("no replica of cluster %s streams; `pgha status --name %s` shows why", name, name)
				case replica:
					node = replicas[0]
				case err != nil:
					return fmt.Errorf("cluster %s: %w; name a node to connect to it anyway", name, err)
				default:
					node = p
				}
			}
			bin, err := exec.LookPath("psql")
			if err != nil {
				return errors.New("psql is not installed on this machine (Debian/Ubuntu: apt-get install postgresql-client; `make deps` does it)")
			}
			n, _ := o.Topo.PatroniNode(node)
			host := o.Access.Host
			if host == "" {
				host = "127.0.0.1"
			}
			argv := append([]string{"psql", "-h", host, "-p", fmt.Sprint(n.PGPort), "-U", topology.SuperUser, "-d", "postgres"}, psqlArgs...)
			env := append(os.Environ(), "PGPASSWORD="+o.Access.Creds.SuperuserPassword, "PGAPPNAME=pgha-psql", "PGCONNECT_TIMEOUT=5")
			fmt.Fprintf(a.stderr, "Connecting to %s (%s:%d) as %s\n", o.Topo.ContainerName(node), host, n.PGPort, topology.SuperUser)
			// psql takes over the process: its exit code and its handling of
			// Ctrl-C (cancel the query, not the session) are the user's.
			if a.eng != nil {
				a.eng.Close()
			}
			return syscall.Exec(bin, argv, env)
		},
	}
	addNameFlag(cmd, &name)
	cmd.Flags().BoolVar(&primary, "primary", false, "connect to the current primary (the default)")
	cmd.Flags().BoolVar(&replica, "replica", false, "connect to a streaming replica")
	return cmd
}
