package engine

import (
	"archive/tar"
	"io"
	"testing"
)

// A directory made for a private file is private; files keep their modes.
func TestTarModes(t *testing.T) {
	r, err := Tar([]File{
		{Name: "/etc/app/secret.conf", Data: []byte("pw"), Mode: 0o600, UID: 999, GID: 999},
		{Name: "/etc/pub/ca.crt", Data: []byte("ca")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"etc/app/": 0o700, "etc/app/secret.conf": 0o600, "etc/pub/": 0o755, "etc/pub/ca.crt": 0o644}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode != want[h.Name] {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, want[h.Name])
		}
		if h.Name == "etc/app/" && h.Uid != 999 {
			t.Errorf("%s: uid %d", h.Name, h.Uid)
		}
		delete(want, h.Name)
	}
	if len(want) != 0 {
		t.Errorf("missing %v", want)
	}
}
