package hosts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/engine"
)

// LoadImages copies images from the outer engine into every host, like
// `kind load docker-image`: one ImageSave of the outer engine streamed into
// an ImageLoad of each host at once. A host that already has an image (same
// ID) is skipped. The error names every host that failed.
func LoadImages(ctx context.Context, outer client.APIClient, hosts []Host, refs []string) error {
	if len(refs) == 0 || len(hosts) == 0 {
		return nil
	}
	ids := map[string]string{}
	for _, ref := range refs {
		im, err := outer.ImageInspect(ctx, ref)
		if err != nil {
			if engine.IsNotFound(err) {
				return fmt.Errorf("loading images into the test hosts: %s is not on the engine (build pgha's images with `pgha images build`)", ref)
			}
			return fmt.Errorf("loading images into the test hosts: inspecting %s: %w", ref, err)
		}
		ids[ref] = im.ID
	}

	// What each host lacks; hosts that lack the same images share one save.
	groups := map[string][]Host{}
	var errs []error
	for _, h := range hosts {
		missing, err := missingImages(ctx, h, refs, ids)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(missing) > 0 {
			key := strings.Join(missing, "\n")
			groups[key] = append(groups[key], h)
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		errs = append(errs, saveInto(ctx, outer, strings.Split(k, "\n"), ids, groups[k]))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loading images into the test hosts: %w", err)
	}
	return nil
}

// missingImages returns the refs a host does not have with the outer ID.
func missingImages(ctx context.Context, h Host, refs []string, ids map[string]string) ([]string, error) {
	cli, err := h.Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var missing []string
	for _, ref := range refs {
		im, err := cli.ImageInspect(ctx, ref)
		switch {
		case err == nil && im.ID == ids[ref]:
		case err == nil || engine.IsNotFound(err):
			missing = append(missing, ref)
		default:
			return nil, fmt.Errorf("host %s: inspecting %s on its engine (%s): %w", h.Name, ref, h.Socket, err)
		}
	}
	return missing, nil
}

// saveInto streams one save of refs into a load on each host.
func saveInto(ctx context.Context, outer client.APIClient, refs []string, ids map[string]string, hosts []Host) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := outer.ImageSave(ctx, refs)
	if err != nil {
		return fmt.Errorf("saving %s from the engine: %w", strings.Join(refs, ", "), err)
	}
	defer rc.Close()

	writers := make([]*pipeWriter, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for k, h := range hosts {
		pr, pw := io.Pipe()
		writers[k] = &pipeWriter{w: pw}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = loadOne(ctx, h, pr, refs, ids)
			// Whatever happened, the copy must not wait on this reader.
			pr.CloseWithError(errLoadEnded)
		}()
	}
	_, copyErr := io.Copy(fanOut(writers), rc)
	for _, w := range writers {
		if copyErr != nil {
			w.w.CloseWithError(fmt.Errorf("saving from the engine: %w", copyErr))
		} else {
			w.w.Close()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

var errLoadEnded = errors.New("the load ended")

func loadOne(ctx context.Context, h Host, r io.Reader, refs []string, ids map[string]string) error {
	cli, err := h.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	resp, err := cli.ImageLoad(ctx, r, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("host %s: loading %s: %w", h.Name, strings.Join(refs, ", "), err)
	}
	defer resp.Body.Close()
	// The load's result, errors included, is inside the stream.
	if err := engine.ReadJSONStream(resp.Body, nil); err != nil {
		return fmt.Errorf("host %s: loading %s: %w", h.Name, strings.Join(refs, ", "), err)
	}
	for _, ref := range refs {
		im, err := cli.ImageInspect(ctx, ref)
		if err != nil {
			return fmt.Errorf("host %s: %s is missing after the load: %w", h.Name, ref, err)
		}
		if im.ID != ids[ref] {
			return fmt.Errorf("host %s: %s is %s after the load, not %s", h.Name, ref, im.ID, ids[ref])
		}
	}
	return nil
}

// pipeWriter is one load's end of the save; once its load has ended it
// takes no more, and the others go on.
type pipeWriter struct {
	w    *io.PipeWriter
	dead bool
}

// fanOut writes to every live writer; it fails only when none is left.
type fanOut []*pipeWriter

func (f fanOut) Write(p []byte) (int, error) {
	live := 0
	for _, w := range f {
		if w.dead {
			continue
		}
		if _, err := w.w.Write(p); err != nil {
			w.dead = true
			continue
		}
		live++
	}
	if live == 0 {
		return 0, errors.New("every load ended before the save")
	}
	return len(p), nil
}
