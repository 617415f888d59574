package cli

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/pgha/pgha/pkg/cluster"
	"github.com/pgha/pgha/pkg/topology"
	"github.com/spf13/cobra"
)

// topologyFlags are the ways to say which cluster to build.
type topologyFlags struct {
	file       string
	name       string
	etcd       int
	patroni    int
	portOffset int
	profile    string
	sync       string
	guard      bool
	router     bool
}

func (f *topologyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "topology file (YAML); default: the seed topology")
	addNameFlag(cmd, &f.name)
	cmd.Flags().IntVar(&f.etcd, "etcd", 3, "number of etcd members (without -f)")
	cmd.Flags().IntVar(&f.patroni, "patroni", 3, "number of Patroni nodes (without -f)")
	cmd.Flags().IntVar(&f.portOffset, "port-offset", 0, "add this to every host port, to run a cluster beside another")
	cmd.Flags().StringVar(&f.profile, "profile", topology.DefaultProfile, "failover timing: fast (ttl 20, loop_wait 1, retry_timeout 5) or seed (Patroni's defaults 30/10/10)")
	cmd.Flags().StringVar(&f.sync, "sync", topology.SyncOff, "synchronous replication: off, on or strict")
	cmd.Flags().BoolVar(&f.guard, "guard", true, "run the fencing guard: fail over at once when the primary's container dies (--guard=false: Patroni's lease only)")
	cmd.Flags().BoolVar(&f.router, "router", true, "run the router (HAProxy): 127.0.0.1:5000 reaches the primary, 5001 the replicas (--router=false: none)")
}

// resolve returns the topology to build. Without -f or count flags, an existing
// cluster keeps the topology it was created with; a different one is refused.
func (f *topologyFlags) resolve(ctx context.Context, cmd *cobra.Command, b cluster.Backend) (topology.Cluster, []string, error) {
	changed := cmd.Flags().Changed
	if f.file != "" && (changed("etcd") || changed("patroni")) {
		return topology.Cluster{}, nil, usageError{errors.New("--etcd and --patroni cannot be combined with -f: set the nodes in the file")}
	}
	var want topology.Cluster
	var warnings []string
	var err error
	switch {
	case f.file != "":
		if want, warnings, err = topology.LoadFile(f.file); err != nil {
			return want, nil, err
		}
		if changed("name") {
			want.Name = f.name
		}
	case !changed("etcd") && !changed("patroni") && !changed("port-offset") && !changed("profile") && !changed("sync") && !changed("guard") && !changed("router"):
		// Plain `up` on an existing cluster keeps the topology it was made with.
		existing, err := b.Find(ctx, f.name)
		if err == nil {
			return existing, nil, nil
		}
		if !errors.As(err, new(cluster.ErrNoCluster)) {
			return want, nil, err
		}
		fallthrough
	default:
		if want, err = topology.Generate(f.name, f.etcd, f.patroni); err != nil {
			return want, nil, usageError{err}
		}
	}
	want.ShiftPorts(f.portOffset)
	if f.file == "" || changed("profile") {
		want.Profile = f.profile
	}
	if f.file == "" || changed("sync") {
		want.SynchronousMode = f.sync
	}
	if f.file == "" || changed("guard") {
		want.Guard = f.guard
	}
	if f.file == "" || changed("router") {
		want.Router = f.router
		if want.Router && want.RouterPorts == (topology.RouterPorts{}) {
			// A file that said router: false has no router ports.
			want.RouterPorts = topology.DefaultRouterPorts()
			want.RouterPorts.Primary += f.portOffset
			want.RouterPorts.Replicas += f.portOffset
			want.RouterPorts.Stats += f.portOffset
		}
	}
	w, err := want.Validate()
	if err != nil {
		return want, nil, err
	}
	warnings = append(warnings, w...)
	existing, err := b.Find(ctx, want.Name)
	if err != nil && !errors.As(err, new(cluster.ErrNoCluster)) {
		return want, nil, err
	}
	want.DataGeneration = existing.DataGeneration // read from the volumes, not a choice
	if err == nil && !reflect.DeepEqual(existing, want) {
		return want, nil, fmt.Errorf("cluster %q already exists with a different topology; remove it first with `pgha down --name %s` (add -v to drop its data), or pick another --name", want.Name, want.Name)
	}
	return want, warnings, nil
}
