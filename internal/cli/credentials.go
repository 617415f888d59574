package cli

import (
	"fmt"

	"github.com/pgha/pgha/pkg/secrets"
	"github.com/pgha/pgha/pkg/verify"
)

// loadCredentials reads a cluster's secrets and CA from its state directory.
func loadCredentials(name string) (verify.Credentials, error) {
	sec, err := loadSecrets(name)
	if err != nil {
		return verify.Credentials{}, err
	}
	store, _ := secrets.For(name) // loadSecrets found it
	ca, err := store.CertPool()
	if err != nil {
		return verify.Credentials{}, fmt.Errorf("reading the CA of cluster %s: %w", name, err)
	}
	return verify.Credentials{SuperuserPassword: sec.SuperuserPassword, S3AccessKey: sec.S3AccessKey, S3SecretKey: sec.S3SecretKey, CA: ca}, nil
}

// loadSecrets reads a cluster's secrets.
func loadSecrets(name string) (secrets.Secrets, error) {
	store, err := secrets.For(name)
	if err != nil {
		return secrets.Secrets{}, err
	}
	sec, err := store.Load()
	if err != nil {
		return sec, fmt.Errorf("reading the secrets of cluster %s from %s: %w (`pgha up` makes them, for the user who runs it)", name, store.Dir, err)
	}
	return sec, nil
}
