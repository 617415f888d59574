package secrets

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// PendingRestoreFile records a restore that has begun and not finished: it
// lets `pgha restore` complete it after an interrupt, and `pgha up` refuse
// to bootstrap an empty cluster over it.
const PendingRestoreFile = "restore-pending.json"

// WriteJSON writes v as a file of the state directory, readable by the user only.
func (s Store) WriteJSON(name string, v any) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(s.path(name), data, 0o600)
}

// ReadJSON reads a file of the state directory into v; found is false when
// it does not exist.
func (s Store) ReadJSON(name string, v any) (found bool, err error) {
	data, err := os.ReadFile(s.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("%s is damaged: %w", s.path(name), err)
	}
	return true, nil
}

// RemoveFile removes a file of the state directory; a missing one is fine.
func (s Store) RemoveFile(name string) error {
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// HasFile says whether the state directory holds the file.
func (s Store) HasFile(name string) bool {
	_, err := os.Stat(s.path(name))
	return err == nil
}
