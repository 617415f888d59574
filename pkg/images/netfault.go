package images

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/progress"
)

// RoleNetfault is the network-fault helper's role: iptables and tc in an
// image failover-test runs in a member's network namespace. No cluster
// container runs it, so it is not part of an ImageSet: it is built the first
// time a network fault needs it.
const RoleNetfault = "netfault"

// Netfault resolves the network-fault helper's image (pgha/netfault:<hash>,
// iptables and iproute2 on the offline Debian base) and builds it when it is
// missing: about 20 s, once.
func (s *Supplier) Netfault(ctx context.Context) (Image, error) {
	im, err := s.localImage(ctx, RoleNetfault, &buildSpec{dir: "netfault", base: OfflineBaseRef, offlineBase: true},
		"iptables and iproute2 on the offline base")
	if err != nil || im.build == nil {
		return im, err
	}
	if err := s.EnsureOfflineBase(ctx); err != nil {
		return im, err
	}
	s.Progress.Start(fmt.Sprintf("Building image %s (the network-fault helper, once)", im.Ref))
	start := time.Now()
	if err := s.buildImage(ctx, &im); err != nil {
		s.Progress.End(false, "")
		return im, err
	}
	im.build = nil
	s.Progress.End(true, fmt.Sprintf("Built image %s from %s (%s)", im.Ref, strings.TrimPrefix(im.Source, "local build from "), progress.Since(start)))
	s.pruneOlder(ctx, im)
	return im, nil
}
