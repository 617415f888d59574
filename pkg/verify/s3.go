package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// NewS3Client talks to the object store over TLS through its loopback port,
// trusting only the cluster's CA.
func NewS3Client(port int, accessKey, secretKey string, ca *x509.CertPool) (*minio.Client, error) {
	return minio.New(fmt.Sprintf("127.0.0.1:%d", port), &minio.Options{
		Creds:        credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:       true,
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12},
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
	if err := s3.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		// Another client may have made it in between.
		if minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
