package ops

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/pgha/pgha/pkg/clients"
	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/topology"
)

// A diagnostics bundle, like `kubectl cnpg report` and `kind export logs`:
// one tar.gz with every container's logs and inspect output, Patroni's view,
// the etcd keys, PostgreSQL's settings and replication views, the topology
// and pgha's version, every secret redacted. What cannot be read (a stopped
// node) is written down as an error file instead: a report is most wanted
// when something is broken.

// ReportInfo says what went into the bundle.
type ReportInfo struct {
	File    string   `json:"file"`
	Entries []string `json:"entries"`
	// Errors are the parts that could not be read, each also in the bundle.
	Errors []string `json:"errors"`
	Bytes  int64    `json:"bytes"`
}

// pgQueries are the PostgreSQL views the report keeps, per node.
var pgQueries = []struct{ name, sql string }{
	{"pg_settings", `SELECT name, setting, unit, source, pending_restart FROM pg_settings ORDER BY name`},
	{"pg_stat_replication", `SELECT * FROM pg_stat_replication`},
	{"pg_replication_slots", `SELECT * FROM pg_replication_slots`},
	{"pg_stat_wal_receiver", `SELECT * FROM pg_stat_wal_receiver`},
	{"recovery", `SELECT pg_is_in_recovery() AS in_recovery, inet_server_port() AS port, version()`},
}

// Report writes the cluster's diagnostics bundle to w as a tar.gz whose
// entries sit under dir/. version is pgha's; members names what runs.
func (o *Ops) Report(ctx context.Context, w io.Writer, dir, version string, members []string, status any) (ReportInfo, error) {
	var info ReportInfo
	store, err := secrets.For(o.Topo.Name)
	if err != nil {
		return info, err
	}
	sec, err := store.Load()
	if err != nil {
		return info, fmt.Errorf("reading the secrets of %s (to redact them): %w", o.Topo.Name, err)
	}
	red := NewRedactor(sec)
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	now := time.Now()
	add := func(name string, data []byte) error {
		data = red.Bytes(data)
		if leaks := red.Leaks(string(data)); len(leaks) > 0 {
			return fmt.Errorf("internal error: %s still holds a secret after redaction", name)
		}
		hdr := &tar.Header{Name: dir + "/" + name, Mode: 0o644, Size: int64(len(data)), ModTime: now}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
		info.Entries = append(info.Entries, name)
		return nil
	}
	addJSON := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		return add(name, append(b, '\n'))
	}
	// part adds what read returns, or an .error file saying why it could not.
	part := func(name string, read func(context.Context) ([]byte, error)) error {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		data, err := read(cctx)
		if err != nil {
			msg := red.String(fmt.Sprintf("%s: %v", name, err))
			info.Errors = append(info.Errors, msg)
			return add(name+".error", []byte(msg+"\n"))
		}
		return add(name, data)
	}
	steps := []func() error{
		func() error {
			return add("version.txt", []byte(fmt.Sprintf("pgha %s\ncluster %s\ncreated %s\n", version, o.Topo.Name, now.UTC().Format(time.RFC3339))))
		},
		func() error { return addJSON("topology.json", o.Topo) },
		func() error { return addJSON("status.json", status) },
	}
	for _, m := range members {
		steps = append(steps,
			func() error {
				return part("containers/"+m+"/logs.txt", func(ctx context.Context) ([]byte, error) { return o.logs(ctx, m) })
			},
			func() error {
				return part("containers/"+m+"/inspect.json", func(ctx context.Context) ([]byte, error) { return o.inspect(ctx, m) })
			})
	}
	for _, p := range []string{"cluster", "history", "config"} {
		steps = append(steps, func() error {
			return part("patroni/"+p+".json", func(ctx context.Context) ([]byte, error) { return o.anyREST(ctx, "/"+p) })
		})
	}
	for _, n := range o.Topo.PatroniNames() {
		steps = append(steps, func() error {
			return part("patroni/"+n+".json", func(ctx context.Context) ([]byte, error) { return indent(o.Access.RawREST(ctx, n, "/patroni")) })
		})
		for _, q := range pgQueries {
			steps = append(steps, func() error {
				return part("postgres/"+n+"/"+q.name+".tsv", func(ctx context.Context) ([]byte, error) { return o.query(ctx, n, q.sql) })
			})
		}
	}
	steps = append(steps, func() error {
		return part("etcd/keys.json", func(ctx context.Context) ([]byte, error) {
			keys, err := o.Access.EtcdKeys(ctx, o.Topo.KeyPrefix())
			if err != nil {
				return nil, err
			}
			return json.MarshalIndent(keys, "", "  ")
		})
	})
	for _, step := range steps {
		if err := step(); err != nil {
			return info, err
		}
		if ctx.Err() != nil {
			return info, ctx.Err()
		}
	}
	if err := tw.Close(); err != nil {
		return info, err
	}
	return info, gz.Close()
}

func indent(raw json.RawMessage, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return raw, nil
	}
	return json.MarshalIndent(v, "", "  ")
}

// anyREST reads a cluster-wide endpoint from the first node that answers.
func (o *Ops) anyREST(ctx context.Context, path string) ([]byte, error) {
	var errs []string
	for _, n := range o.Topo.PatroniNames() {
		b, err := indent(o.Access.RawREST(ctx, n, path))
		if err == nil {
			return b, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", n, err))
	}
	return nil, fmt.Errorf("no Patroni node answers: %s", strings.Join(errs, "; "))
}

// logs is a container's whole log, with timestamps.
func (o *Ops) logs(ctx context.Context, node string) ([]byte, error) {
	eng, name := o.Backend.Where(o.Topo, node)
	rc, err := eng.API.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out strings.Builder
	_, err = stdcopy.StdCopy(&out, &out, rc)
	return []byte(out.String()), err
}

func (o *Ops) inspect(ctx context.Context, node string) ([]byte, error) {
	eng, name := o.Backend.Where(o.Topo, node)
	_, raw, err := eng.API.ContainerInspectWithRaw(ctx, name, false)
	if err != nil {
		return nil, err
	}
	return indent(raw, nil)
}

// query runs sql on a node and returns its rows as tab-separated lines with
// a header.
func (o *Ops) query(ctx context.Context, node, sql string) ([]byte, error) {
	conn, err := o.Access.Connect(ctx, node)
	if err != nil {
		return nil, fmt.Errorf("%s", clients.PGErr(err))
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var b strings.Builder
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	b.WriteString(strings.Join(cols, "\t") + "\n")
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				cells[i] = ""
				continue
			}
			cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(fmt.Sprint(v))
		}
		b.WriteString(strings.Join(cells, "\t") + "\n")
	}
	return []byte(b.String()), rows.Err()
}

// MemberNames are every member a report or logs covers: etcd, Patroni, the
// object store (storeKind) and the guard.
func MemberNames(topo topology.Cluster, storeKind string) []string {
	all := append(topo.EtcdNames(), topo.PatroniNames()...)
	if storeKind != "" {
		all = append(all, storeKind)
	}
	if topo.Guard {
		all = append(all, topology.GuardNode)
	}
	return all
}
