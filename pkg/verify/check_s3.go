package verify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgha/pgha/pkg/clients"
)

// checkObjectStore: an authenticated S3 request over TLS succeeds and the
// backup bucket exists.
func checkObjectStore(ctx context.Context, t Target, out *rows) {
	const g = "objectstore"
	s3, err := t.S3()
	if err != nil {
		out.add(Check{Group: g, Name: "S3 client", Detail: err.Error()})
		return
	}
	var buckets []string
	ok := timed(out, g, "authenticated S3 over TLS", func() (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		bs, err := s3.ListBuckets(cctx)
		if err != nil {
			err = fmt.Errorf("%s: ListBuckets on https://%s failed: %v", t.StoreKind, t.S3Addr(), clients.ShortErr(err))
			return "", t.why(ctx, t.StoreKind, err)
		}
		for _, b := range bs {
			buckets = append(buckets, b.Name)
		}
		return fmt.Sprintf("ListBuckets on https://%s with the cluster's CA", t.S3Addr()), nil
	})
	timed(out, g, "bucket "+t.Topo.ObjectStore.Bucket, func() (string, error) {
		if !ok {
			return "", fmt.Errorf("skipped: the object store did not answer")
		}
		for _, b := range buckets {
			if b == t.Topo.ObjectStore.Bucket {
				return "exists", nil
			}
		}
		return "", fmt.Errorf("bucket %s missing (buckets: %s)", t.Topo.ObjectStore.Bucket, strings.Join(buckets, ", "))
	})
}
