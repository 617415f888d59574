package clients

import (
	"context"
	"crypto/tls"
	"net/http"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/pgha/pgha/pkg/topology"
)

// S3 talks to the object store over TLS through its published port, trusting
// only the cluster's CA.
func (a Access) S3() (*minio.Client, error) {
	return minio.New(a.S3Addr(), &minio.Options{
		Creds:        credentials.NewStaticV4(a.Creds.S3AccessKey, a.Creds.S3SecretKey, ""),
		Secure:       true,
		Region:       topology.S3Region,
		BucketLookup: minio.BucketLookupPath,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: a.Creds.CA, MinVersion: tls.VersionTLS12},
		},
	})
}

// EnsureBucket makes the bucket unless it exists. It is the authenticated
// request that proves the store is ready.
func EnsureBucket(ctx context.Context, s3 *minio.Client, bucket string) (created bool, err error) {
	ok, err := s3.BucketExists(ctx, bucket)
	if err != nil {
		return false, err
	}
	if ok {
		return false, nil
	}
	if err := s3.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: topology.S3Region}); err != nil {
		// Another client may have made it in between.
		if minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
