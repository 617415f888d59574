package hosts

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/pgha/pgha/images"
	"github.com/pgha/pgha/pkg/engine"
)

// BaseImage is pgha's offline Debian trixie base (made by `pgha images build`
// with mmdebstrap), on which the engine image is built.
const BaseImage = "pgha/base:trixie"

// contextDir is the engine image's build context in images.Contexts.
const contextDir = "dind"

// Image labels, as pgha's other images carry them.
const (
	labelImage   = "io.pgha.image"
	labelContext = "io.pgha.context"
	labelSource  = "io.pgha.source"
)

// EngineImageRef is the engine image's tag: pgha/dind:<hash of its build
// context and base>, so that an unchanged context is never rebuilt.
func EngineImageRef() (string, error) {
	files, err := contextFiles()
	if err != nil {
		return "", err
	}
	return "pgha/dind:" + contextHash(BaseImage, files), nil
}

// EnsureEngineImage builds the engine image unless the engine has it, and
// returns its ref. The build takes about 30 s (apt-get install docker.io).
func EnsureEngineImage(ctx context.Context, api client.APIClient, progress func(string)) (string, error) {
	progress = orNop(progress)
	files, err := contextFiles()
	if err != nil {
		return "", err
	}
	ref := "pgha/dind:" + contextHash(BaseImage, files)
	if _, err := api.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !engine.IsNotFound(err) {
		return "", fmt.Errorf("looking for the engine image %s: %w", ref, err)
	}
	if _, err := api.ImageInspect(ctx, BaseImage); err != nil {
		if engine.IsNotFound(err) {
			return "", fmt.Errorf("the engine image %s is built on %s, which this engine does not have: run `pgha images build` first (it makes the offline base with mmdebstrap)", ref, BaseImage)
		}
		return "", fmt.Errorf("looking for %s: %w", BaseImage, err)
	}
	progress(fmt.Sprintf("building the engine image %s on %s (apt-get install docker.io, about 30 s)", ref, BaseImage))
	start := time.Now()
	tarball, err := tarFiles(files)
	if err != nil {
		return "", err
	}
	base := BaseImage
	resp, err := api.ImageBuild(ctx, tarball, build.ImageBuildOptions{
		Tags:        []string{ref},
		BuildArgs:   map[string]*string{"BASE": &base},
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		Labels: map[string]string{
			labelImage:   "dind",
			labelContext: ref,
			labelSource:  "local build from images/dind on " + BaseImage,
		},
	})
	if err != nil {
		return "", fmt.Errorf("building the engine image %s: %w", ref, err)
	}
	defer resp.Body.Close()
	// A failed build answers 200 and reports its error inside the stream.
	if err := readJSONStream(resp.Body, nil); err != nil {
		return "", fmt.Errorf("building the engine image %s failed: %w", ref, err)
	}
	if _, err := api.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("building the engine image %s: the engine reported success but the image is missing: %w", ref, err)
	}
	progress(fmt.Sprintf("built the engine image %s (%s)", ref, since(start)))
	return ref, nil
}

// contextHash names a build by its base and its files.
func contextHash(base string, files map[string][]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "base=%s\n", base)
	for _, n := range sortedKeys(files) {
		fmt.Fprintf(h, "%s %d\n", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func contextFiles() (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(images.Contexts, contextDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := images.Contexts.ReadFile(path)
		files[strings.TrimPrefix(path, contextDir+"/")] = data
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the embedded build context %s: %w", contextDir, err)
	}
	return files, nil
}

func tarFiles(files map[string][]byte) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range sortedKeys(files) {
		mode := int64(0o644)
		if strings.HasSuffix(n, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: mode, Size: int64(len(files[n])), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readJSONStream reads a build or load stream to its end and returns the
// error it reports, with the lines that led to it. line, when set, sees
// every line.
func readJSONStream(r io.Reader, line func(string)) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading the engine's output: %w", err)
		}
		if m.Error != nil {
			msg := m.Error.Message
			if len(tail) > 0 {
				msg += "\n--- last output ---\n" + strings.Join(tail, "\n")
			}
			return errors.New(msg)
		}
		l := strings.TrimSpace(m.Stream)
		if l == "" {
			l = strings.TrimSpace(m.Status + " " + m.ID)
		}
		if l == "" {
			continue
		}
		if line != nil {
			line(l)
		}
		tail = append(tail, l)
		if len(tail) > 15 {
			tail = tail[1:]
		}
	}
}

func orNop(f func(string)) func(string) {
	if f == nil {
		return func(string) {}
	}
	return f
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
