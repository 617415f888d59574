package secrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"slices"
	"time"
)

// TLS file names in the state directory.
const (
	CACertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
	// EtcdCertFile and EtcdKeyFile serve etcd's client and peer ports; the
	// certificate is also the members' client certificate towards peers.
	EtcdCertFile = "etcd.crt"
	EtcdKeyFile  = "etcd.key"
)

// CAPath is the CA certificate that signs the object store's certificate.
func (s Store) CAPath() string { return s.path(CACertFile) }

// ReadFile returns one of the TLS files.
func (s Store) ReadFile(name string) ([]byte, error) { return os.ReadFile(s.path(name)) }

// ensureTLS makes a CA and a server certificate for hosts, unless they exist
// and the certificate already covers every host.
func (s Store) ensureTLS(hosts []string) error {
	return s.issue(ServerCertFile, ServerKeyFile, hosts, x509.ExtKeyUsageServerAuth)
}

// EnsureEtcdTLS makes etcd's certificate for hosts (its members' names on the
// cluster network and on the host), unless one covers them already.
func (s Store) EnsureEtcdTLS(hosts []string) error {
	return s.issue(EtcdCertFile, EtcdKeyFile, hosts, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

// issue makes a certificate signed by the cluster's CA for hosts.
func (s Store) issue(certFile, keyFile string, hosts []string, usage ...x509.ExtKeyUsage) error {
	if certCovers(s.path(certFile), hosts) {
		return nil
	}
	caCert, caKey, err := s.loadOrMakeCA()
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"pgha"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("issuing %s: %w", certFile, err)
	}
	if err := writePEM(s.path(keyFile), "PRIVATE KEY", mustPKCS8(key), 0o600); err != nil {
		return err
	}
	return writePEM(s.path(certFile), "CERTIFICATE", der, 0o644)
}

func (s Store) loadOrMakeCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if pair, err := tls.LoadX509KeyPair(s.path(CACertFile), s.path(caKeyFile)); err == nil {
		cert, err := x509.ParseCertificate(pair.Certificate[0])
		if key, ok := pair.PrivateKey.(*ecdsa.PrivateKey); ok && err == nil {
			return cert, key, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "pgha local CA", Organization: []string{"pgha"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writePEM(s.path(caKeyFile), "PRIVATE KEY", mustPKCS8(key), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writePEM(s.path(CACertFile), "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// certCovers says whether the PEM certificate at path names every host.
func certCovers(path string, hosts []string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || time.Now().After(cert.NotAfter) {
		return false
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(cert.DNSNames, h) {
			return false
		}
	}
	return true
}

// CertPool returns a pool holding the cluster's CA, for clients of the object store.
func (s Store) CertPool() (*x509.CertPool, error) {
	data, err := os.ReadFile(s.CAPath())
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no certificate", s.CAPath())
	}
	return pool, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func mustPKCS8(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // an ECDSA P-256 key always marshals
	}
	return der
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), mode)
}
