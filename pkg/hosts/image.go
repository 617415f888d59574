package hosts

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/client"
	"github.com/pgha/pgha/pkg/engine"
	"github.com/pgha/pgha/pkg/images"
	"github.com/pgha/pgha/pkg/progress"
)

// BaseImage is pgha's offline Debian trixie base (made by `pgha images build`
// with mmdebstrap), on which the engine image is built.
const BaseImage = images.OfflineBaseRef

// contextDir is the engine image's embedded build context (images/dind).
const contextDir = "dind"

// EnsureEngineImage builds the engine image unless the engine has it (and
// the offline base it needs), and returns its ref: pgha/dind:<hash of its
// build context and base>. The build takes about 30 s (apt-get install docker.io).
func EnsureEngineImage(ctx context.Context, api client.APIClient, progressLine func(string)) (string, error) {
	return EnsureEngineImageWith(ctx, &images.Supplier{Engine: engine.New(api), Progress: progress.Lines(orNop(progressLine))})
}

// EnsureEngineImageWith is EnsureEngineImage with the caller's supplier, so
// that the CLI shows the build as its other builds.
func EnsureEngineImageWith(ctx context.Context, sup *images.Supplier) (string, error) {
	ref, err := sup.Ensure(ctx, contextDir)
	if err != nil {
		return "", fmt.Errorf("the engine image: %w", err)
	}
	return ref, nil
}

func orNop(f func(string)) func(string) {
	if f == nil {
		return func(string) {}
	}
	return f
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
