// Package cli is pgha's command line: one file per command, output rendering
// and the progress display. It locates the engine and owns the process's one
// Docker client.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// version is stamped at build time with -ldflags "-X github.com/pgha/pgha/internal/cli.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// app carries what every command shares: streams, terminal facts and the
// Docker client, made on first use.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stdinTTYFn     func() bool
	stdoutTTY      bool
	stderrTTY      bool
	color          bool
	verbose        bool
	// contextName is --context: the docker context to use.
	contextName string
	eng         *engine.Engine
}

// Main runs pgha with the process's arguments and returns its exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first Ctrl-C cancels the command, which then heals and cleans up;
	// a second one is not swallowed: it ends pgha at once.
	go func() { <-ctx.Done(); stop() }()
	a := &app{
		stdin:      os.Stdin,
		stdinTTYFn: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
		stdout:     os.Stdout,
		stderr:     os.Stderr,
		stdoutTTY:  term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY:  term.IsTerminal(int(os.Stderr.Fd())),
	}
	a.color = a.stderrTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return a.run(ctx, os.Args[1:])
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.newRootCommand()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if a.eng != nil {
		a.eng.Close()
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		cleanup := "`pgha down`"
		if len(args) > 0 && args[0] == "hosts" {
			cleanup = "`pgha hosts delete`"
		}
		fmt.Fprintf(a.stderr, "interrupted: run the same command again to complete, or %s to clean up\n", cleanup)
		return exitInterrupted
	case errors.As(err, new(usageError)):
		fmt.Fprintf(a.stderr, "error: %v\n", err)
		return exitUsage
	case errors.As(err, new(silentError)):
		return exitError
	default:
		fmt.Fprintf(a.stderr, "error: %v\n", err)
		return exitError
	}
}

// usageError is bad input on the command line (exit code 2).
type usageError struct{ error }

// silentError means the command has already reported its failure.
type silentError struct{ error }

func (a *app) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pgha",
		Short: "A PostgreSQL high-availability lab on Docker: etcd, Patroni, PostgreSQL 17 and an S3 store",
		Long: `pgha builds and runs a local PostgreSQL high-availability cluster on a Docker engine:
3 etcd members, 3 Patroni nodes running PostgreSQL 17 with streaming replication and
automatic failover, and an S3 object store, all on one bridge network, then proves it works.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().BoolVar(&a.verbose, "verbose", false, "show the output of long steps (builds, waits)")
	root.PersistentFlags().StringVar(&a.contextName, "context", "", "the docker context to use (default: DOCKER_HOST, then DOCKER_CONTEXT, then the Docker CLI's current context)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		a.newUpCommand(),
		a.newDownCommand(),
		a.newStatusCommand(),
		a.newVerifyCommand(),
		a.newInspectCommand(),
		a.newFailoverTestCommand(),
		a.newSwitchoverCommand(),
		a.newBackupCommand(),
		a.newRestoreCommand(),
		a.newEnvCommand(),
		a.newImagesCommand(),
		a.newVersionCommand(),
		a.newGuardCommand(),
		// Day-2 operations (issue 13), patronictl's names.
		a.newPsqlCommand(),
		a.newLogsCommand(),
		a.newReportCommand(),
		a.newPauseCommand(),
		a.newResumeCommand(),
		a.newRestartCommand(),
		a.newReinitCommand(),
		a.newHistoryCommand(),
		a.newConfigCommand(),
		a.newScaleCommand(),
		a.newHostsCommand(),
	)
	return root
}

// engine returns the process's engine, located as the docker CLI does and
// connected on first use.
func (a *app) engine(ctx context.Context) (*engine.Engine, error) {
	if a.eng != nil {
		return a.eng, nil
	}
	ep, err := engine.Locate(a.contextName)
	if err != nil {
		return nil, err
	}
	eng, err := engine.Connect(ctx, ep)
	if err != nil {
		return nil, err
	}
	a.eng = eng
	return eng, nil
}

// backend is the engine as a cluster backend, reporting progress to p (nil: none).
func (a *app) backend(ctx context.Context, p progress.Progress) (*cluster.Docker, error) {
	eng, err := a.engine(ctx)
	if err != nil {
		return nil, err
	}
	return cluster.NewDocker(eng, p), nil
}

// backendFor is the backend that runs the named cluster: the engine itself,
// or a swarm it manages or whose test hosts it runs. A cluster found nowhere
// gets the engine's backend (whose Find says it does not exist).
func (a *app) backendFor(ctx context.Context, name string, p progress.Progress) (*cluster.Docker, error) {
	b, _, err := a.cluster(ctx, name, p)
	if err != nil && !errors.As(err, new(cluster.ErrNoCluster)) {
		return nil, err
	}
	return b, nil
}

// cluster connects to the engine and reads the named cluster's topology; a
// cluster that does not exist is a clear error.
func (a *app) cluster(ctx context.Context, name string, p progress.Progress) (*cluster.Docker, topology.Cluster, error) {
	b, err := a.backend(ctx, p)
	if err != nil {
		return nil, topology.Cluster{}, err
	}
	topo, err := b.Find(ctx, name)
	switch {
	case err == nil && topo.OnSwarm():
		s, serr := a.swarmOnManager(ctx, b.Engine, p)
		if serr != nil {
			return nil, topo, serr
		}
		return s.Docker, topo, nil
	case errors.As(err, new(cluster.ErrNoCluster)):
		s, stopo, serr := a.findSwarm(ctx, b.Engine, name, p)
		if serr != nil {
			return nil, topo, serr
		}
		if s != nil {
			return s.Docker, stopo, nil
		}
	}
	return b, topo, err
}

// access is how a cluster's services are reached, with its credentials.
func (a *app) access(ctx context.Context, name string) (*cluster.Docker, clients.Access, error) {
	b, topo, err := a.cluster(ctx, name, nil)
	if err != nil {
		return nil, clients.Access{}, err
	}
	acc, err := cluster.AccessFor(b, topo)
	return b, acc, err
}

// stdinTTY says whether a person can answer a question on stdin.
func (a *app) stdinTTY() bool { return a.stdinTTYFn != nil && a.stdinTTYFn() }

func (a *app) newStatus() *status { return newStatus(a.stderr, a.stderrTTY, a.color, a.verbose) }

func (a *app) newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print pgha's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.stdout, "pgha %s\n", version)
			return nil
		},
	}
}
