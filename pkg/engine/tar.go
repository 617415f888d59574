package engine

import (
	"archive/tar"
	"bytes"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// File is one file in a tar archive: an image's build context or files
// copied into a container.
type File struct {
	// Name is the path in the archive; a leading "/" is dropped.
	Name string
	Data []byte
	// Mode defaults to 0644.
	Mode int64
	// UID and GID own the file and the directories made for it.
	UID, GID int
}

// Tar archives files in name order with fixed times (the same files give
// the same archive), adding each file's own directory once, owned like the
// file, mode 0700 when it holds a private file, else 0755 (directories above
// it are left as they are).
func Tar(files []File) (io.Reader, error) {
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A directory that holds a private file (a key, a password) is private too.
	private := map[string]bool{}
	for _, f := range sorted {
		if f.Mode != 0 && f.Mode&0o077 == 0 {
			private[path.Dir(strings.TrimPrefix(f.Name, "/"))] = true
		}
	}
	dirs := map[string]bool{}
	for _, f := range sorted {
		name := strings.TrimPrefix(f.Name, "/")
		if dir := path.Dir(name); dir != "." && !dirs[dir] {
			dirs[dir] = true
			mode := int64(0o755)
			if private[dir] {
				mode = 0o700
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode, Uid: f.UID, Gid: f.GID, ModTime: time.Unix(0, 0)}); err != nil {
				return nil, err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(f.Data)), Uid: f.UID, Gid: f.GID, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}
