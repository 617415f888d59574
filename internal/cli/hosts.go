package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/hosts"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
)

// defaultHostsPrefix names the test hosts when --prefix is not given.
const defaultHostsPrefix = "pgha-hosts"

func (a *app) newHostsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "A swarm of Docker engines in containers on this machine, for trying and testing (a test harness)",
		Long: `Test hosts are Docker engines running in containers on this machine's engine, joined
into a Docker Swarm (the first three are managers), with pgha's images loaded into each:
kind's "nodes are containers", for Swarm. They are a test harness, not a production mode.
This machine talks to each inner engine through a unix socket under the state directory.`,
	}
	cmd.AddCommand(a.newHostsCreateCommand(), a.newHostsListCommand(), a.newHostsDeleteCommand(), a.newHostsEnvCommand())
	return cmd
}

type hostsCreateFlags struct {
	prefix     string
	ports      []string
	plan       bool
	file       string
	name       string
	portOffset int
	imageLoad  bool
	timeout    time.Duration
	output     string
}

func (a *app) newHostsCreateCommand() *cobra.Command {
	f := &hostsCreateFlags{}
	cmd := &cobra.Command{
		Use:   "create [N]",
		Short: "Create N test hosts (default 3), join them into a swarm and load pgha's images into each",
		Long: `Create N Docker engines in containers (default 3; 1 to 20), join them into a swarm whose
first three hosts are managers, and load pgha's images into every one of them (building the
missing ones first), like kind load docker-image. Running it again completes what is missing,
starts stopped hosts and changes nothing else. A host's published ports are fixed when it is
made: by default the ports of the cluster pgha up would make (the seed topology, or -f FILE,
--name and --port-offset as pgha up takes them), each on the host that runs its member when
the cluster is placed on the hosts (etcd member i and Patroni node i on host i, the object
store and the router on h1, unless the topology places them); --ports adds more. To change
them, delete the hosts and create them again.`,
		Example: "  pgha hosts create\n  pgha hosts create 5 --prefix lab --port-offset 100\n  pgha hosts create -f cluster.yaml\n  pgha hosts create 3 --plan=false --ports h1=15435,18008 --ports h2=15436",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			count := hosts.DefaultCount
			if len(args) == 1 {
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 || n > 20 {
					return usageError{fmt.Errorf("number of hosts %q: give a whole number from 1 to 20", args[0])}
				}
				count = n
			}
			ports, err := parseHostPorts(f.ports, count)
			if err != nil {
				return usageError{err}
			}
			if ports, err = f.portPlan(cmd, count, ports); err != nil {
				return err
			}
			return a.hostsCreate(cmd.Context(), f, count, ports)
		},
	}
	f.register(cmd)
	return cmd
}

func (f *hostsCreateFlags) register(cmd *cobra.Command) {
	addPrefixFlag(cmd, &f.prefix)
	cmd.Flags().BoolVar(&f.plan, "plan", true, "publish the ports of the cluster's topology on the hosts that run its members (--plan=false: only --ports)")
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "topology file (YAML) whose ports the hosts publish; default: the seed topology")
	addNameFlag(cmd, &f.name)
	cmd.Flags().IntVar(&f.portOffset, "port-offset", 0, "add this to every port of the topology, as pgha up --port-offset does")
	cmd.Flags().StringArrayVar(&f.ports, "ports", nil, "ports a host publishes on 127.0.0.1, the same number inside: HOST=PORT[,PORT...] (repeatable; HOST is h1, h2… or 1, 2…)")
	cmd.Flags().BoolVar(&f.imageLoad, "image-load", true, "load pgha's images into every host (building the missing ones)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", hosts.DefaultReadyTimeout, "how long to wait for the engines to answer and for the swarm to be ready")
	addOutputFlag(cmd, &f.output)
}

// portPlan is the ports each host publishes: the topology's, placed on the
// hosts (unless --plan=false), and --ports.
func (f *hostsCreateFlags) portPlan(cmd *cobra.Command, count int, extra map[int][]int) (map[int][]int, error) {
	changed := cmd.Flags().Changed
	if !f.plan {
		if changed("file") || changed("name") || changed("port-offset") {
			return nil, usageError{errors.New("-f, --name and --port-offset plan the ports of a topology: they cannot be combined with --plan=false")}
		}
		return extra, nil
	}
	var topo topology.Cluster
	var err error
	if f.file != "" {
		if topo, _, err = topology.LoadFile(f.file); err != nil {
			return nil, err
		}
		if changed("name") {
			topo.Name = f.name
		}
	} else if topo, err = topology.Generate(f.name, 3, 3); err != nil {
		return nil, usageError{err}
	}
	topo.ShiftPorts(f.portOffset)
	if _, err := topo.Validate(); err != nil {
		return nil, err
	}
	plan, err := hosts.PortPlan(topo, count, topology.StoreVersityGW)
	if err != nil {
		return nil, err
	}
	return hosts.AddPorts(plan, extra), nil
}

// parseHostPorts reads --ports values: h1=5435,8008 or 1=5435.
func parseHostPorts(values []string, count int) (map[int][]int, error) {
	ports := map[int][]int{}
	for _, v := range values {
		host, list, ok := strings.Cut(v, "=")
		if !ok || list == "" {
			return nil, fmt.Errorf("--ports %q: use HOST=PORT[,PORT...], such as h1=15435,18008", v)
		}
		i, err := strconv.Atoi(strings.TrimPrefix(host, "h"))
		if err != nil || i < 1 || i > count {
			return nil, fmt.Errorf("--ports %q: host %q is not one of h1 to h%d", v, host, count)
		}
		for _, p := range strings.Split(list, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("--ports %q: %q is not a TCP port", v, p)
			}
			ports[i] = append(ports[i], n)
		}
	}
	return ports, nil
}

// hostsStateDir is where the engines' sockets live: <state root>/hosts.
func hostsStateDir() (string, error) {
	root, err := secrets.StateRoot()
	if err != nil {
		return "", err
	}
	return filepath.Abs(filepath.Join(root, "hosts"))
}

func (a *app) hostsCreate(ctx context.Context, f *hostsCreateFlags, count int, ports map[int][]int) error {
	eng, err := a.engine(ctx)
	if err != nil {
		return err
	}
	if h := eng.API.DaemonHost(); !strings.HasPrefix(h, "unix://") {
		return fmt.Errorf("test hosts need this machine's Docker engine over its unix socket, and the engine is %s: this machine talks to each inner engine through a socket in a directory it shares with the host's container (choose a local engine with --context or DOCKER_HOST=unix:///var/run/docker.sock)", h)
	}
	stateDir, err := hostsStateDir()
	if err != nil {
		return err
	}
	st := a.newStatus()
	defer st.Close()
	sup := &images.Supplier{Engine: eng, Progress: st}

	var refs []string
	if f.imageLoad {
		var set images.ImageSet
		err = progress.Step(st, "Resolving pgha's images", func() (string, error) {
			set, err = sup.Resolve(ctx)
			return "Images resolved", err
		})
		if err != nil {
			return err
		}
		set.Guard = images.Image{} // not loaded: see below
		if err := sup.Build(ctx, &set); err != nil {
			return err
		}
		// The members' images. Not the guard's: it is built from this very
		// pgha binary, so a copy loaded now goes stale with the next build;
		// whoever deploys the guard on the swarm loads it then.
		refs = []string{set.Patroni.Ref, set.Etcd.Ref, set.ObjectStore.Ref}
	}
	// Built with its own progress step when missing, silent when present.
	engineImage, err := hosts.EnsureEngineImageWith(ctx, sup)
	if err != nil {
		return err
	}

	start := time.Now()
	st.Start(fmt.Sprintf("Creating %d test hosts %s", count, f.prefix))
	sw, err := hosts.Create(ctx, eng.API, hosts.Options{
		Prefix:       f.prefix,
		Count:        count,
		Ports:        ports,
		StateDir:     stateDir,
		Images:       refs,
		EngineImage:  engineImage,
		ReadyTimeout: f.timeout,
	}, func(line string) { st.Info("  " + line) })
	if err != nil {
		if ctx.Err() == nil {
			for _, h := range sw.Hosts {
				if tail := hosts.LogTail(ctx, eng.API, h.Container, 10); tail != "" && h.State != "running" {
					st.Info(fmt.Sprintf("last log lines of %s:\n%s", h.Container, tail))
				}
			}
		}
		return err
	}
	summary := fmt.Sprintf("%d test hosts %s: a swarm of %d managers and %d workers", len(sw.Hosts), f.prefix, len(sw.Managers()), len(sw.Hosts)-len(sw.Managers()))
	if len(refs) > 0 {
		summary += fmt.Sprintf(", %d images on every host", len(refs))
	}
	st.End(true, fmt.Sprintf("%s (%s)", summary, progress.Since(start)))

	statuses := hosts.Probe(ctx, sw)
	view := hostsView{Prefix: sw.Prefix, Network: sw.Network, Hosts: statuses}
	if f.output == "json" {
		err = printJSON(a.stdout, view)
	} else {
		a.printHosts([]hostsView{view}, false)
	}
	a.hostsHint(st, f.prefix, statuses)
	return err
}

// hostsView is one swarm of test hosts as the commands show it.
type hostsView struct {
	Prefix  string             `json:"prefix"`
	Network string             `json:"network"`
	Hosts   []hosts.HostStatus `json:"hosts"`
}

// printHosts renders the hosts of one or more swarms as one table.
func (a *app) printHosts(views []hostsView, withPrefix bool) {
	headers := []string{"HOST", "CONTAINER", "ADDRESS", "ROLE", "ENGINE", "PORTS", "READY"}
	if withPrefix {
		headers = append([]string{"PREFIX"}, headers...)
	}
	var rows [][]string
	for _, v := range views {
		for _, h := range v.Hosts {
			role := h.SwarmRole
			if h.Leader {
				role += " (leader)"
			}
			ports := "-"
			if len(h.Ports) > 0 {
				ps := make([]string, len(h.Ports))
				for i, p := range h.Ports {
					ps[i] = strconv.Itoa(p)
				}
				ports = strings.Join(ps, ",")
			}
			ready := "yes"
			if !h.Ready {
				ready = "no: " + h.Detail
			}
			addr := h.Address
			if addr == "" {
				addr = "-"
			}
			row := []string{h.Name, h.Container, addr, role, h.Socket, ports, ready}
			if withPrefix {
				row = append([]string{v.Prefix}, row...)
			}
			rows = append(rows, row)
		}
	}
	a.printTable(headers, rows, "ENGINE", "READY", "PORTS")
}

// hostsHint says, on stderr, how to talk to a host's engine.
func (a *app) hostsHint(st *status, prefix string, statuses []hosts.HostStatus) {
	if len(statuses) == 0 {
		return
	}
	flag := ""
	if prefix != defaultHostsPrefix {
		flag = " --prefix " + prefix
	}
	h := statuses[0]
	st.Info(fmt.Sprintf("Point docker at a host's engine (%s is a manager):\n  export DOCKER_HOST=%s\n  docker node ls\nor: eval \"$(pgha hosts env%s %s)\"",
		h.Name, h.Socket, flag, h.Name))
	st.Info("Deploy a cluster on them with `pgha up --swarm" + strings.Replace(flag, "--prefix", "--hosts", 1) + "` (the hosts are a test harness, not a production mode). Remove them with `pgha hosts delete" + flag + "`.")
}

func (a *app) newHostsListCommand() *cobra.Command {
	var output, prefix string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the test hosts on the engine, with what their own engines and the swarm say",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			eng, err := a.engine(ctx)
			if err != nil {
				return err
			}
			prefixes := []string{prefix}
			if prefix == "" {
				if prefixes, err = hosts.List(ctx, eng.API); err != nil {
					return err
				}
			}
			views := []hostsView{}
			for _, p := range prefixes {
				sw, err := hosts.Inspect(ctx, eng.API, p)
				if errors.Is(err, hosts.ErrNoHosts) {
					continue
				}
				if err != nil {
					return err
				}
				views = append(views, hostsView{Prefix: sw.Prefix, Network: sw.Network, Hosts: hosts.Probe(ctx, sw)})
			}
			if output == "json" {
				return printJSON(a.stdout, views)
			}
			if len(views) == 0 {
				fmt.Fprintln(a.stderr, "No test hosts on this engine; `pgha hosts create` makes them.")
				return nil
			}
			a.printHosts(views, true)
			return nil
		},
	}
	cmd.Flags().Var((*hostsPrefix)(&prefix), "prefix", "list only the test hosts with this prefix")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) newHostsDeleteCommand() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Remove the test hosts: their containers, network, volumes and socket directories",
		Long: `Remove every container, network and volume that carries the test hosts' label
io.pgha.hosts=<prefix>, and their socket directories. Each running host is emptied through its
own engine first. Nothing else is touched; nothing to delete is not an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			eng, err := a.engine(ctx)
			if err != nil {
				return err
			}
			st := a.newStatus()
			defer st.Close()
			st.Start("Deleting test hosts " + prefix)
			start := time.Now()
			c, n, v, err := hostsResources(ctx, eng.API, prefix)
			if err != nil {
				return err
			}
			if c+n+v == 0 {
				st.End(true, fmt.Sprintf("Nothing to delete for test hosts %s", prefix))
				return nil
			}
			if err := hosts.Delete(ctx, eng.API, prefix); err != nil {
				return err
			}
			st.End(true, fmt.Sprintf("Deleted test hosts %s: %s, %s, %s (%s)", prefix, plural(c, "container"), plural(n, "network"), plural(v, "volume"), progress.Since(start)))
			return nil
		},
	}
	addPrefixFlag(cmd, &prefix)
	return cmd
}

// hostsResources counts what carries the prefix's label on the engine.
func hostsResources(ctx context.Context, api client.APIClient, prefix string) (containers, networks, volumes int, err error) {
	f := filters.NewArgs(filters.Arg("label", hosts.LabelHosts+"="+prefix))
	cs, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("listing the containers of test hosts %s: %w", prefix, err)
	}
	ns, err := api.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("listing the networks of test hosts %s: %w", prefix, err)
	}
	vs, err := api.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("listing the volumes of test hosts %s: %w", prefix, err)
	}
	return len(cs), len(ns), len(vs.Volumes), nil
}

func (a *app) newHostsEnvCommand() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:     "env [HOST]",
		Short:   "Print the DOCKER_HOST that reaches a test host's engine (default h1, a manager)",
		Example: "  eval \"$(pgha hosts env h2)\"\n  docker node ls",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := "h1"
			if len(args) == 1 {
				name = args[0]
				if !strings.HasPrefix(name, "h") {
					name = "h" + name
				}
			}
			eng, err := a.engine(ctx)
			if err != nil {
				return err
			}
			sw, err := hosts.Inspect(ctx, eng.API, prefix)
			if err != nil {
				return err
			}
			h, ok := sw.Host(name)
			if !ok {
				return fmt.Errorf("test hosts %s have no host %s (they are h1 to h%d)", prefix, name, len(sw.Hosts))
			}
			fmt.Fprintf(a.stdout, "export DOCKER_HOST=%s\n", shellQuote(h.Socket))
			return nil
		},
	}
	addPrefixFlag(cmd, &prefix)
	return cmd
}

// addPrefixFlag adds --prefix, checked when it is parsed: a bad prefix is a
// usage error before anything touches the engine.
func addPrefixFlag(cmd *cobra.Command, prefix *string) {
	*prefix = defaultHostsPrefix
	cmd.Flags().Var((*hostsPrefix)(prefix), "prefix", "the test hosts' prefix: containers <prefix>-h1…, label io.pgha.hosts=<prefix>")
}

type hostsPrefix string

func (p *hostsPrefix) String() string { return string(*p) }
func (p *hostsPrefix) Type() string   { return "prefix" }
func (p *hostsPrefix) Set(v string) error {
	if err := hosts.ValidPrefix(v); err != nil {
		return err
	}
	*p = hostsPrefix(v)
	return nil
}

// plural is "1 network", "3 volumes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
