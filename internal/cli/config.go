package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/ops"
	"github.com/pgha/pgha/pkg/poll"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// config: Patroni's dynamic configuration, the one in etcd that every node
// follows (what `patronictl show-config` and `edit-config` work on).
func (a *app) newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change Patroni's dynamic configuration (ttl, loop_wait, postgresql.parameters, ...)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("config needs a subcommand: show or set")}
		},
	}
	cmd.AddCommand(a.newConfigShowCommand(), a.newConfigSetCommand())
	return cmd
}

func (a *app) newConfigShowCommand() *cobra.Command {
	var name, output string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print Patroni's dynamic configuration as YAML (-o json: JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, acc, err := a.access(ctx, name)
			if err != nil {
				return err
			}
			cfg, err := acc.DynamicConfig(ctx)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(a.stdout, cfg)
			}
			out, err := yaml.Marshal(cfg)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) newConfigSetCommand() *cobra.Command {
	var name, output string
	var yes bool
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE...",
		Short: "Change keys of Patroni's dynamic configuration, shown as a diff before they apply",
		Long: `Change keys of Patroni's dynamic configuration through its REST API (PATCH /config).
Keys are dotted paths: ttl, loop_wait, retry_timeout, maximum_lag_on_failover,
synchronous_mode, postgresql.use_slots, postgresql.parameters.<name>, ... A value of
null removes the key. Keys and values are checked first (numbers, booleans, PostgreSQL
parameter names, Patroni's ttl/loop_wait/retry_timeout rules); the change is shown as a
diff and applied after a yes (--yes skips the question). PostgreSQL parameters that need a
restart show as pending_restart in ` + "`pgha report`" + ` and take effect with ` + "`pgha restart --rolling`.",
		Example: "  pgha config set postgresql.parameters.work_mem=16MB\n  pgha config set ttl=30 loop_wait=2 retry_timeout=10 --yes\n  pgha config set postgresql.parameters.work_mem=null",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			settings, err := ops.ParseSettings(args)
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			_, acc, err := a.access(ctx, name)
			if err != nil {
				return err
			}
			current, err := acc.DynamicConfig(ctx)
			if err != nil {
				return err
			}
			after := ops.Apply(current, settings)
			if err := ops.Check(after); err != nil {
				return usageError{err}
			}
			changes := ops.Diff(ops.Flatten(current), after)
			if output != "json" {
				a.printDiff(changes)
			}
			if len(changes) == 0 {
				fmt.Fprintln(a.stderr, "Nothing to change: the configuration already says so.")
				if output == "json" {
					return printJSON(a.stdout, map[string]any{"cluster": name, "applied": false, "changes": changes})
				}
				return nil
			}
			if !yes {
				if !a.stdinTTY() {
					return usageError{errors.New("not applied: stdin is not a terminal to confirm on; add --yes")}
				}
				fmt.Fprint(a.stderr, "Apply these changes? [y/N] ")
				line, _ := bufio.NewReader(a.stdin).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					fmt.Fprintln(a.stderr, "Not applied.")
					return nil
				}
			}
			if err := acc.PatchAny(ctx, ops.Patch(settings)); err != nil {
				return err
			}
			// A node answers GET /config from its last loop's view of the
			// cluster (up to loop_wait old): wait until it shows the change,
			// so that a `config show` right after sees it.
			err = poll.For(ctx, 15*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
				cfg, err := acc.DynamicConfig(ctx)
				return err == nil && ops.Shows(cfg, settings), nil
			})
			if err != nil && ctx.Err() != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "✓ Applied %d change(s) to cluster %s's dynamic configuration\n", len(changes), name)
			if err != nil {
				fmt.Fprintln(a.stderr, "  (Patroni's nodes did not show it yet after 15 s: they do on their next loop)")
			}
			if output == "json" {
				return printJSON(a.stdout, map[string]any{"cluster": name, "applied": true, "changes": changes})
			}
			return nil
		},
	}
	addNameFlag(cmd, &name)
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "apply without asking")
	return cmd
}

// printDiff shows changes as a unified diff's -/+ lines, on stdout.
func (a *app) printDiff(changes []ops.Change) {
	for _, c := range changes {
		if c.Old != nil {
			fmt.Fprintf(a.stdout, "- %s: %s\n", c.Key, ops.Show(c.Old))
		}
		if c.New != nil {
			fmt.Fprintf(a.stdout, "+ %s: %s\n", c.Key, ops.Show(c.New))
		}
	}
}
