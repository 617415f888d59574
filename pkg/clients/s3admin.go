package clients

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
	"github.com/pgha/pgha/pkg/topology"
)

// versitygw's admin API (the routes `versitygw admin` calls), served on the
// S3 port and signed with SigV4 by the root account: pgha gives pgBackRest an
// account of its own with it, instead of the store's root keys.

// S3Account is a versitygw IAM account.
type S3Account struct {
	XMLName xml.Name `xml:"Account"`
	Access  string   `xml:"Access"`
	Secret  string   `xml:"Secret"`
	// Role is "user": it reaches only the buckets it owns.
	Role string `xml:"Role"`
}

// EnsureS3User makes the account unless one with its access key exists.
func (a Access) EnsureS3User(ctx context.Context, acc S3Account) (created bool, err error) {
	body, err := xml.Marshal(acc)
	if err != nil {
		return false, err
	}
	status, msg, err := a.s3Admin(ctx, "/create-user", nil, body)
	switch {
	case err != nil:
		return false, err
	case status == http.StatusConflict: // XAdminUserExists
		return false, nil
	case status >= 300:
		return false, fmt.Errorf("creating S3 user %s: %d %s", acc.Access, status, msg)
	}
	return true, nil
}

// ChangeBucketOwner gives a bucket to an account.
func (a Access) ChangeBucketOwner(ctx context.Context, bucket, owner string) error {
	status, msg, err := a.s3Admin(ctx, "/change-bucket-owner/", url.Values{"bucket": {bucket}, "owner": {owner}}, nil)
	if err != nil {
		return err
	}
	if status >= 300 {
		return fmt.Errorf("giving bucket %s to %s: %d %s", bucket, owner, status, msg)
	}
	return nil
}

func (a Access) s3Admin(ctx context.Context, path string, q url.Values, body []byte) (int, string, error) {
	u := url.URL{Scheme: "https", Host: a.S3Addr(), Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req = signer.SignV4(*req, a.Creds.S3AccessKey, a.Creds.S3SecretKey, "", topology.S3Region)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: a.Creds.CA, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("object store admin API %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(msg), nil
}
