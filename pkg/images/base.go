package images

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/progress"

	"github.com/docker/docker/api/types/image"
)

// OfflineBaseRef is the Debian trixie base pgha makes with mmdebstrap when no
// registry can be reached.
const OfflineBaseRef = "pgha/base:trixie"

// offlineBaseRecipe is the mmdebstrap command line; its words are part of the
// content hash of every image built on the base.
var offlineBaseRecipe = []string{"--variant=minbase", "--include=ca-certificates", "trixie", "-"}

// ErrNoMmdebstrap says how to get the tool that makes the offline base.
var ErrNoMmdebstrap = errors.New("the offline base image needs mmdebstrap, which is not installed: install it with `sudo apt-get install -y mmdebstrap` (Debian/Ubuntu), or load ubuntu:24.04 into the engine")

// EnsureOfflineBase makes the Debian trixie base image unless it exists:
// mmdebstrap writes a root filesystem tarball that is imported into the engine.
func (s *Supplier) EnsureOfflineBase(ctx context.Context) error {
	if s.present(ctx, OfflineBaseRef) {
		return nil
	}
	bin, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return ErrNoMmdebstrap
	}
	s.Progress.Start("Making the offline base image " + OfflineBaseRef + " with mmdebstrap")
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, offlineBaseRecipe...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		s.Progress.End(false, "")
		return fmt.Errorf("starting mmdebstrap: %w", err)
	}
	var tail []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.Progress.Detail(line)
			tail = append(tail, line)
			if len(tail) > 10 {
				tail = tail[1:]
			}
		}
	}()
	rc, importErr := s.Engine.API.ImageImport(ctx, image.ImportSource{Source: stdout, SourceName: "-"}, OfflineBaseRef,
		image.ImportOptions{Changes: []string{`LABEL io.pgha.image=base`, `CMD ["/bin/bash"]`}})
	if importErr == nil {
		importErr = s.readJSONStream(rc)
		rc.Close()
	} else {
		_, _ = io.Copy(io.Discard, stdout) // let mmdebstrap finish
	}
	<-done
	waitErr := cmd.Wait()
	if waitErr != nil {
		s.Progress.End(false, "")
		return fmt.Errorf("mmdebstrap failed: %v\n%s", waitErr, strings.Join(tail, "\n"))
	}
	if importErr != nil {
		s.Progress.End(false, "")
		return fmt.Errorf("importing the offline base image: %w", importErr)
	}
	s.Progress.End(true, fmt.Sprintf("Made the offline base image %s with mmdebstrap (%s)", OfflineBaseRef, progress.Since(start)))
	return nil
}
