package hosts

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/engine"
)

// ErrNoHosts says that nothing carries the prefix's label.
var ErrNoHosts = errors.New("no such test hosts")

func prefixFilter(prefix string, role string) filters.Args {
	f := filters.NewArgs(filters.Arg("label", LabelHosts+"="+prefix))
	if role != "" {
		f.Add("label", LabelRole+"="+role)
	}
	return f
}

// Inspect rebuilds a swarm of test hosts from the outer engine: its
// containers and their labels. It asks no inner engine. With no host
// container it returns an error wrapping ErrNoHosts.
func Inspect(ctx context.Context, api client.APIClient, prefix string) (Swarm, error) {
	sw := Swarm{Prefix: prefix, Network: NetworkName(prefix)}
	list, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: prefixFilter(prefix, RoleEngine)})
	if err != nil {
		return sw, fmt.Errorf("listing the containers of test hosts %s: %w", prefix, err)
	}
	for _, c := range list {
		ct, err := api.ContainerInspect(ctx, c.ID)
		if engine.IsNotFound(err) {
			continue
		}
		if err != nil {
			return sw, fmt.Errorf("inspecting container %s: %w", strings.Join(c.Names, ","), err)
		}
		sw.Hosts = append(sw.Hosts, hostOf(ct, sw.Network))
	}
	if len(sw.Hosts) == 0 {
		return sw, fmt.Errorf("test hosts %s: %w (create them first)", prefix, ErrNoHosts)
	}
	sort.Slice(sw.Hosts, func(a, b int) bool { return sw.Hosts[a].Index < sw.Hosts[b].Index })
	return sw, nil
}

// hostOf reads a host from its container.
func hostOf(ct container.InspectResponse, net string) Host {
	l := ct.Config.Labels
	h := Host{
		Name:      l[LabelNode],
		Container: strings.TrimPrefix(ct.Name, "/"),
		SwarmRole: l[LabelSwarmRole],
	}
	h.Index, _ = strconv.Atoi(strings.TrimPrefix(h.Name, "h"))
	if dir := l[LabelSocketDir]; dir != "" {
		h.Socket = SocketURL(dir)
	}
	if ct.State != nil {
		h.State = ct.State.Status
	}
	if ct.HostConfig != nil {
		h.Ports = publishedPorts(ct.HostConfig.PortBindings)
	}
	if ct.NetworkSettings != nil {
		if ep := ct.NetworkSettings.Networks[net]; ep != nil {
			h.Address = ep.IPAddress
		}
	}
	return h
}

// List returns the prefixes of the swarms of test hosts on the engine.
func List(ctx context.Context, api client.APIClient) ([]string, error) {
	list, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelHosts), filters.Arg("label", LabelRole+"="+RoleEngine))})
	if err != nil {
		return nil, fmt.Errorf("listing test hosts: %w", err)
	}
	seen := map[string]bool{}
	var prefixes []string
	for _, c := range list {
		if p := c.Labels[LabelHosts]; p != "" && !seen[p] {
			seen[p] = true
			prefixes = append(prefixes, p)
		}
	}
	sort.Strings(prefixes)
	return prefixes, nil
}
