// Package images supplies the images a cluster runs: an upstream image when
// present or pullable, else a local build from a context embedded in pgha,
// tagged with a hash of what goes into it so that an unchanged context is
// never built twice.
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	contexts "github.com/pgha/pgha/images"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/progress"
	"github.com/pgha/pgha/pkg/topology"
)

// Upstream images used when present or pullable, and the offline bases.
const (
	UpstreamEtcd  = "quay.io/coreos/etcd:v3.5.16"
	UpstreamMinIO = "minio/minio:RELEASE.2024-10-02T17-50-41Z"
	// UpstreamHAProxy is the router's upstream image; its haproxy binary is on
	// PATH as in Debian's, so the same command line runs both.
	UpstreamHAProxy = "haproxy:3.0"
	UbuntuBase      = "ubuntu:24.04"
	PatroniAlias    = "patroni:local"
)

// Image labels: the image's role and the hash of what built it.
const (
	LabelImage   = "io.pgha.image"
	LabelContext = "io.pgha.context"
	LabelSource  = "io.pgha.source"
)

// Image is one resolved image: what containers of a role run.
type Image struct {
	Role   string `json:"role"`
	Ref    string `json:"ref"`
	Source string `json:"source"`
	// Kind is the object store's kind (minio or versitygw); empty otherwise.
	Kind string `json:"kind,omitempty"`
	// Unavailable says why the image cannot be had (the guard's only).
	Unavailable string `json:"unavailable,omitempty"`
	// Build is set when the image must still be built.
	build *buildSpec
}

// ImageSet holds the images a cluster runs.
type ImageSet struct {
	Etcd        Image `json:"etcd"`
	Patroni     Image `json:"patroni"`
	ObjectStore Image `json:"objectStore"`
	// Guard is pgha's own binary in an image; its Unavailable says why
	// when this pgha cannot run in the engine (another OS or architecture).
	Guard Image `json:"guard"`
	// Router is HAProxy, for clusters with the router on.
	Router Image `json:"router"`
}

// All lists the images, Patroni first.
func (s *ImageSet) All() []*Image {
	return []*Image{&s.Patroni, &s.Etcd, &s.ObjectStore, &s.Guard, &s.Router}
}

// NeedsBuild says whether any image is still to be built.
func (s ImageSet) NeedsBuild() bool {
	for _, im := range s.All() {
		if im.build != nil {
			return true
		}
	}
	return false
}

// buildSpec is a local build: an embedded context, its base and extra inputs.
type buildSpec struct {
	dir   string // directory in contexts.Contexts
	base  string // the BASE build argument
	alias string // an extra tag, such as patroni:local
	// offlineBase means base is pgha's mmdebstrap image and must exist first.
	offlineBase bool
	// extra adds generated files (such as the versitygw binary) to the context.
	extra func(ctx context.Context) (map[string][]byte, error)
	// inputs names what extra adds, for the content hash ("versitygw=v1.8.0").
	inputs string
}

// Supplier resolves and builds images on one engine.
type Supplier struct {
	Engine   *engine.Engine
	Progress progress.Progress
}

// Resolve decides where each image comes from without building anything:
// an upstream image that is present or can be pulled, a local build that already
// exists (same content hash), or a local build still to be made.
func (s *Supplier) Resolve(ctx context.Context) (ImageSet, error) {
	var set ImageSet

	// Patroni: always a local build, on Ubuntu when available, else offline Debian.
	base, baseWords, offline := OfflineBaseRef, "Debian trixie offline base (mmdebstrap)", true
	if s.present(ctx, UbuntuBase) || s.pull(ctx, UbuntuBase) == nil {
		base, baseWords, offline = UbuntuBase, UbuntuBase+" with PGDG packages", false
	}
	pat, err := s.localImage(ctx, topology.RolePatroni, &buildSpec{dir: "patroni", base: base, alias: PatroniAlias, offlineBase: offline}, baseWords)
	if err != nil {
		return set, err
	}
	set.Patroni = pat

	// etcd: upstream when present or pullable, else Debian's etcd-server.
	set.Etcd, err = s.upstreamOr(ctx, topology.RoleEtcd, UpstreamEtcd,
		&buildSpec{dir: "etcd", base: OfflineBaseRef, offlineBase: true}, "Debian etcd-server 3.5.16 on the offline base")
	if err != nil {
		return set, err
	}

	// Object store: MinIO when present or pullable, else versitygw from its Go module.
	set.ObjectStore, err = s.upstreamOr(ctx, topology.RoleObjectStore, UpstreamMinIO,
		&buildSpec{dir: "objectstore", base: OfflineBaseRef, offlineBase: true, extra: versityGWContext(s), inputs: "versitygw=" + VersityGWVersion},
		"versitygw "+VersityGWVersion+" built from its Go module")
	if err != nil {
		return set, err
	}
	set.ObjectStore.Kind = topology.StoreVersityGW
	if set.ObjectStore.Ref == UpstreamMinIO {
		set.ObjectStore.Kind = topology.StoreMinIO
	}
	set.Guard, err = s.guardImage(ctx, base, offline)
	if err != nil {
		return set, err
	}
	// Router: upstream HAProxy when present or pullable, else Debian's haproxy.
	set.Router, err = s.upstreamOr(ctx, topology.RoleRouter, UpstreamHAProxy,
		&buildSpec{dir: "router", base: OfflineBaseRef, offlineBase: true}, "Debian haproxy 3.0 on the offline base")
	return set, err
}

// upstreamOr uses the upstream image when present or pullable, else a local build.
func (s *Supplier) upstreamOr(ctx context.Context, role, upstream string, spec *buildSpec, words string) (Image, error) {
	if s.present(ctx, upstream) {
		return Image{Role: role, Ref: upstream, Source: "upstream image " + upstream + " (present)"}, nil
	}
	local, err := s.localImage(ctx, role, spec, words)
	if err != nil || local.build == nil {
		return local, err
	}
	if s.pull(ctx, upstream) == nil {
		return Image{Role: role, Ref: upstream, Source: "upstream image " + upstream + " (pulled)"}, nil
	}
	return local, nil
}

// localImage names a local build by the hash of its context and base, and says
// whether it exists already.
func (s *Supplier) localImage(ctx context.Context, role string, spec *buildSpec, words string) (Image, error) {
	files, err := contextFiles(spec.dir)
	if err != nil {
		return Image{}, err
	}
	ref := fmt.Sprintf("pgha/%s:%s", role, contextHash(spec, files))
	im := Image{Role: role, Ref: ref, Source: "local build from " + words}
	if !s.present(ctx, ref) {
		im.build = spec
	} else if spec.alias != "" && !s.present(ctx, spec.alias) {
		if err := s.Engine.API.ImageTag(ctx, ref, spec.alias); err != nil {
			return im, fmt.Errorf("tagging %s as %s: %w", ref, spec.alias, err)
		}
	}
	return im, nil
}

// contextHash names a build by what goes into it: the context's files, the
// base, the offline base's recipe and the versitygw version.
func contextHash(spec *buildSpec, files map[string][]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "base=%s\n", spec.base)
	if spec.offlineBase {
		fmt.Fprintf(h, "recipe=%s\n", strings.Join(offlineBaseRecipe, " "))
	}
	if spec.inputs != "" {
		fmt.Fprintf(h, "%s\n", spec.inputs)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// contextFiles reads an embedded build context.
func contextFiles(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(contexts.Contexts, dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := contexts.Contexts.ReadFile(path)
		files[strings.TrimPrefix(path, dir+"/")] = data
		return err
	})
	return files, err
}

// Ensure makes an image pgha builds on demand, outside a cluster's set (the
// engines in containers, a fault helper): the embedded context dir on the
// offline Debian base, tagged pgha/<dir>:<hash>. It returns the ref.
func (s *Supplier) Ensure(ctx context.Context, dir string) (string, error) {
	im, err := s.localImage(ctx, dir, &buildSpec{dir: dir, base: OfflineBaseRef, offlineBase: true}, "Debian packages on the offline base")
	if err != nil {
		return "", err
	}
	return im.Ref, s.buildOne(ctx, &im)
}

// Build builds every image that Resolve left to build. The images do not
// depend on one another (only on the offline base, made first), so they
// build at the same time: the Patroni image's apt downloads, versitygw's Go
// build and the etcd image overlap instead of queueing.
func (s *Supplier) Build(ctx context.Context, set *ImageSet) error {
	var todo []*Image
	for _, im := range set.All() {
		if im.build != nil {
			todo = append(todo, im)
		}
	}
	switch len(todo) {
	case 0:
		return nil
	case 1:
		return s.buildOne(ctx, todo[0])
	}
	for _, im := range todo {
		if im.build.offlineBase {
			if err := s.EnsureOfflineBase(ctx); err != nil {
				return err
			}
			break
		}
	}
	var refs []string
	for _, im := range todo {
		refs = append(refs, im.Ref)
	}
	took := make([]time.Duration, len(todo))
	err := progress.Step(s.Progress, fmt.Sprintf("Building %d images at once: %s", len(todo), strings.Join(refs, ", ")), func() (string, error) {
		errs := make([]error, len(todo))
		var wg sync.WaitGroup
		for i, im := range todo {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				errs[i] = s.buildImage(ctx, im)
				took[i] = time.Since(start)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		var parts []string
		for i, im := range todo {
			parts = append(parts, fmt.Sprintf("%s %s", im.Role, took[i].Round(100*time.Millisecond)))
		}
		return fmt.Sprintf("Built %d images (%s)", len(todo), strings.Join(parts, ", ")), nil
	})
	if err != nil {
		return err
	}
	for _, im := range todo {
		im.build = nil
		s.pruneOlder(ctx, *im)
	}
	return nil
}

// buildOne builds an image still to build (its base first, when that is
// the offline one), with a progress line, and prunes its earlier builds.
func (s *Supplier) buildOne(ctx context.Context, im *Image) error {
	if im.build == nil {
		return nil
	}
	if im.build.offlineBase {
		if err := s.EnsureOfflineBase(ctx); err != nil {
			return err
		}
	}
	s.Progress.Start(fmt.Sprintf("Building image %s", im.Ref))
	start := time.Now()
	if err := s.buildImage(ctx, im); err != nil {
		s.Progress.End(false, "")
		return err
	}
	im.build = nil
	s.Progress.End(true, fmt.Sprintf("Built image %s from %s (%s)", im.Ref, strings.TrimPrefix(im.Source, "local build from "), progress.Since(start)))
	s.pruneOlder(ctx, *im)
	return nil
}

func (s *Supplier) buildImage(ctx context.Context, im *Image) error {
	files, err := contextFiles(im.build.dir)
	if err != nil {
		return err
	}
	if im.build.extra != nil {
		more, err := im.build.extra(ctx)
		if err != nil {
			return err
		}
		for n, b := range more {
			files[n] = b
		}
	}
	tarball, err := engine.Tar(contextArchive(files))
	if err != nil {
		return err
	}
	base := im.build.base
	tags := []string{im.Ref}
	if im.build.alias != "" {
		tags = append(tags, im.build.alias)
	}
	resp, err := s.Engine.API.ImageBuild(ctx, tarball, build.ImageBuildOptions{
		Tags:        tags,
		BuildArgs:   map[string]*string{"BASE": &base},
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		Labels:      map[string]string{LabelImage: im.Role, LabelContext: im.Ref, LabelSource: im.Source},
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", im.Ref, err)
	}
	defer resp.Body.Close()
	// The engine answers 200 and reports a failed build inside the stream,
	// so the stream is read to its end.
	if err := engine.ReadJSONStream(resp.Body, func(line string) { s.Progress.Detail(im.Role + ": " + line) }); err != nil {
		return fmt.Errorf("building %s failed: %w", im.Ref, err)
	}
	if !s.present(ctx, im.Ref) {
		return fmt.Errorf("building %s: the engine reported success but the image is missing", im.Ref)
	}
	return nil
}

// readJSONStream shows a build, pull or import stream as progress and
// returns the error it reports.
func (s *Supplier) readJSONStream(r io.Reader) error {
	return engine.ReadJSONStream(r, s.Progress.Detail)
}

// contextArchive lists a build context's files for the tar writer; scripts
// and binaries are executable.
func contextArchive(files map[string][]byte) []engine.File {
	var out []engine.File
	for n, data := range files {
		mode := int64(0o644)
		if strings.HasSuffix(n, ".sh") || n == "versitygw" || n == guardBinaryName {
			mode = 0o755
		}
		out = append(out, engine.File{Name: n, Data: data, Mode: mode})
	}
	return out
}

// present says whether the engine has the image.
func (s *Supplier) present(ctx context.Context, ref string) bool {
	_, err := s.Engine.API.ImageInspect(ctx, ref)
	return err == nil
}

// pull tries to pull an image, briefly: where no registry is reachable it fails fast.
func (s *Supplier) pull(ctx context.Context, ref string) error {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rc, err := s.Engine.API.ImagePull(pctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := s.readJSONStream(rc); err != nil {
		return err
	}
	if !s.present(ctx, ref) {
		return fmt.Errorf("pull of %s did not produce the image", ref)
	}
	return nil
}

// Remove removes every image pgha built (labelled io.pgha.image) and the
// patroni:local tag. Images pgha pulled are left alone.
func Remove(ctx context.Context, eng *engine.Engine) ([]string, error) {
	list, err := eng.API.ImageList(ctx, image.ListOptions{All: false, Filters: engine.LabelFilter(LabelImage)})
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, im := range list {
		if _, err := eng.API.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !engine.IsNotFound(err) {
			return removed, fmt.Errorf("removing image %s: %w", strings.Join(im.RepoTags, ","), err)
		}
		removed = append(removed, im.RepoTags...)
	}
	return removed, nil
}

// Pending says whether the image still has to be built.
func (im Image) Pending() bool { return im.build != nil }

// pruneOlder removes the earlier builds of an image's role that no container
// uses, so that changed build contexts do not pile up on the disk.
func (s *Supplier) pruneOlder(ctx context.Context, current Image) {
	list, err := s.Engine.API.ImageList(ctx, image.ListOptions{Filters: engine.LabelFilter(LabelImage, current.Role)})
	if err != nil {
		return
	}
	for _, im := range list {
		if slices.Contains(im.RepoTags, current.Ref) {
			continue
		}
		// Without Force the engine refuses an image a container uses.
		if _, err := s.Engine.API.ImageRemove(ctx, im.ID, image.RemoveOptions{PruneChildren: true}); err == nil {
			s.Progress.Info(fmt.Sprintf("  removed the earlier build %s", strings.Join(im.RepoTags, ", ")))
		}
	}
}
