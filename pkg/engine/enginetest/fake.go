// Package enginetest is a fake Docker engine for unit tests of the packages
// that drive the engine: containers, networks and volumes in memory, with
// labels, states, port bindings and network attachments, filtered by label
// as the engine does, and a record of every call that changes something.
// Only the calls pgha makes are implemented; any other panics (the embedded
// nil interface), which shows at once what a test is missing.
package enginetest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// Container is a fake container.
type Container struct {
	ID, Name, Image string
	Labels          map[string]string
	State           container.ContainerState
	ExitCode        int
	Networks        map[string]string // network name → IP address
	Ports           []int             // published host ports (on 127.0.0.1)
}

// Engine is the fake engine. Its fields may be set directly before a test.
type Engine struct {
	client.APIClient // nil: calls that are not faked panic

	mu         sync.Mutex
	Containers map[string]*Container // by name
	Networks   map[string]map[string]string
	Volumes    map[string]map[string]string
	// Calls records every call that changes something: "stop c1", "remove volume v".
	Calls []string
	// Fail makes the named call fail with the error: "remove c1" → NotFound.
	Fail map[string]error
	// EventStreams hands out one event stream per Events call, in order;
	// when they run out, Events blocks until its context ends.
	EventStreams []EventStream
	// OS is what Info reports as the operating system.
	OS string
}

// EventStream is what one Events call returns.
type EventStream struct {
	Msgs chan events.Message
	Errs chan error
}

// New is an empty fake engine.
func New() *Engine {
	return &Engine{Containers: map[string]*Container{}, Networks: map[string]map[string]string{},
		Volumes: map[string]map[string]string{}, Fail: map[string]error{}}
}

// NotFound is the engine's "no such object" error.
func NotFound(what string) error { return cerrdefs.ErrNotFound.WithMessage("no such " + what) }

// AddContainer adds a container; its ID is derived from its name.
func (e *Engine) AddContainer(c Container) *Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.ID == "" {
		c.ID = fmt.Sprintf("%064x", len(e.Containers)+1)
	}
	if c.State == "" {
		c.State = container.StateRunning
	}
	if c.Networks == nil {
		c.Networks = map[string]string{}
	}
	e.Containers[c.Name] = &c
	return &c
}

func (e *Engine) record(call string) error {
	e.Calls = append(e.Calls, call)
	return e.Fail[call]
}

// Called says whether a call was made.
func (e *Engine) Called(call string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.Calls {
		if c == call {
			return true
		}
	}
	return false
}

func (e *Engine) find(nameOrID string) *Container {
	if c, ok := e.Containers[strings.TrimPrefix(nameOrID, "/")]; ok {
		return c
	}
	for _, c := range e.Containers {
		if c.ID == nameOrID {
			return c
		}
	}
	return nil
}

// matches applies the label and name filters pgha uses.
func matches(f filters.Args, labels map[string]string, name, id string) bool {
	for _, l := range f.Get("label") {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	for _, n := range f.Get("name") {
		if n != name {
			return false
		}
	}
	for _, i := range f.Get("id") {
		if i != id {
			return false
		}
	}
	return true
}

func (e *Engine) ContainerList(_ context.Context, o container.ListOptions) ([]container.Summary, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []container.Summary
	for _, c := range e.sorted() {
		running := c.State == container.StateRunning || c.State == container.StatePaused
		if (!o.All && !running) || !matches(o.Filters, c.Labels, c.Name, c.ID) {
			continue
		}
		s := container.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Image, Labels: c.Labels, State: c.State,
			NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}}}
		if c.State == container.StateExited {
			s.Status = fmt.Sprintf("Exited (%d) 1 second ago", c.ExitCode) // the engine's words
		}
		for n, ip := range c.Networks {
			s.NetworkSettings.Networks[n] = &network.EndpointSettings{IPAddress: ip}
		}
		if running {
			for _, p := range c.Ports {
				s.Ports = append(s.Ports, container.Port{IP: "127.0.0.1", PublicPort: uint16(p), PrivatePort: uint16(p), Type: "tcp"})
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (e *Engine) sorted() []*Container {
	var cs []*Container
	for _, c := range e.Containers {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	return cs
}

func (e *Engine) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	if c == nil {
		return container.InspectResponse{}, NotFound("container: " + id)
	}
	st := &container.State{Status: c.State, ExitCode: c.ExitCode,
		Running: c.State == container.StateRunning || c.State == container.StatePaused, Paused: c.State == container.StatePaused}
	bindings := nat.PortMap{}
	for _, p := range c.Ports {
		bindings[nat.Port(strconv.Itoa(p)+"/tcp")] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(p)}}
	}
	nets := map[string]*network.EndpointSettings{}
	for n, ip := range c.Networks {
		nets[n] = &network.EndpointSettings{IPAddress: ip}
	}
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: c.ID, Name: "/" + c.Name, State: st, HostConfig: &container.HostConfig{PortBindings: bindings}},
		Config:            &container.Config{Image: c.Image, Labels: c.Labels},
		NetworkSettings:   &container.NetworkSettings{Networks: nets},
	}, nil
}

// change applies a state change after recording the call.
func (e *Engine) change(verb, id string, fn func(c *Container)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	name := id
	if c != nil {
		name = c.Name
	}
	if err := e.record(verb + " " + name); err != nil {
		return err
	}
	if c == nil {
		return NotFound("container: " + id)
	}
	fn(c)
	return nil
}

func (e *Engine) ContainerStop(_ context.Context, id string, _ container.StopOptions) error {
	return e.change("stop", id, func(c *Container) { c.State, c.ExitCode = container.StateExited, 0 })
}

func (e *Engine) ContainerKill(_ context.Context, id, _ string) error {
	return e.change("kill", id, func(c *Container) { c.State, c.ExitCode = container.StateExited, 137 })
}

func (e *Engine) ContainerStart(_ context.Context, id string, _ container.StartOptions) error {
	return e.change("start", id, func(c *Container) { c.State = container.StateRunning })
}

func (e *Engine) ContainerPause(_ context.Context, id string) error {
	return e.change("pause", id, func(c *Container) { c.State = container.StatePaused })
}

func (e *Engine) ContainerUnpause(_ context.Context, id string) error {
	return e.change("unpause", id, func(c *Container) { c.State = container.StateRunning })
}

func (e *Engine) ContainerRemove(_ context.Context, id string, _ container.RemoveOptions) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	name := id
	if c != nil {
		name = c.Name
	}
	if err := e.record("remove " + name); err != nil {
		return err
	}
	if c == nil {
		return NotFound("container: " + id)
	}
	delete(e.Containers, c.Name)
	return nil
}

func (e *Engine) NetworkList(_ context.Context, o network.ListOptions) ([]network.Summary, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []network.Summary
	for name, labels := range e.Networks {
		if matches(o.Filters, labels, name, name) {
			out = append(out, network.Summary{Name: name, ID: name, Labels: labels})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (e *Engine) NetworkInspect(_ context.Context, id string, _ network.InspectOptions) (network.Inspect, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	labels, ok := e.Networks[id]
	if !ok {
		return network.Inspect{}, NotFound("network: " + id)
	}
	return network.Inspect{Name: id, ID: id, Labels: labels}, nil
}

func (e *Engine) NetworkRemove(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.record("remove network " + id); err != nil {
		return err
	}
	if _, ok := e.Networks[id]; !ok {
		return NotFound("network: " + id)
	}
	delete(e.Networks, id)
	return nil
}

func (e *Engine) NetworkDisconnect(_ context.Context, nw, id string, _ bool) error {
	return e.change("disconnect", id, func(c *Container) { delete(c.Networks, nw) })
}

func (e *Engine) NetworkConnect(_ context.Context, nw, id string, _ *network.EndpointSettings) error {
	return e.change("connect", id, func(c *Container) { c.Networks[nw] = "10.0.0.99" })
}

func (e *Engine) VolumeList(_ context.Context, o volume.ListOptions) (volume.ListResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out volume.ListResponse
	for name, labels := range e.Volumes {
		if matches(o.Filters, labels, name, name) {
			out.Volumes = append(out.Volumes, &volume.Volume{Name: name, Labels: labels})
		}
	}
	sort.Slice(out.Volumes, func(i, j int) bool { return out.Volumes[i].Name < out.Volumes[j].Name })
	return out, nil
}

func (e *Engine) VolumeInspect(_ context.Context, id string) (volume.Volume, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	labels, ok := e.Volumes[id]
	if !ok {
		return volume.Volume{}, NotFound("volume: " + id)
	}
	return volume.Volume{Name: id, Labels: labels}, nil
}

func (e *Engine) VolumeRemove(_ context.Context, id string, _ bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.record("remove volume " + id); err != nil {
		return err
	}
	if _, ok := e.Volumes[id]; !ok {
		return NotFound("volume: " + id)
	}
	delete(e.Volumes, id)
	return nil
}

func (e *Engine) Info(context.Context) (system.Info, error) {
	return system.Info{OperatingSystem: e.OS}, nil
}

// Events hands out the next prepared stream; with none left it blocks until
// ctx ends, as a quiet engine does.
func (e *Engine) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	e.mu.Lock()
	e.Calls = append(e.Calls, "events")
	var s EventStream
	if len(e.EventStreams) > 0 {
		s, e.EventStreams = e.EventStreams[0], e.EventStreams[1:]
	}
	e.mu.Unlock()
	if s.Msgs == nil {
		s = EventStream{Msgs: make(chan events.Message)}
	}
	// As the SDK does, the error channel reports the end of ctx too.
	errs := make(chan error, 1)
	go func() {
		select {
		case err := <-s.Errs:
			errs <- err
		case <-ctx.Done():
			errs <- ctx.Err()
		}
	}()
	return s.Msgs, errs
}

func (e *Engine) Close() error { return nil }
