package images

import (
	"strings"
	"testing"
)

type recorder struct{ details []string }

func (r *recorder) Start(string)       {}
func (r *recorder) Detail(line string) { r.details = append(r.details, line) }
func (r *recorder) End(bool, string)   {}
func (r *recorder) Info(string)        {}
func (r *recorder) Warn(string)        {}

// The engine answers 200 to a failing build and puts the error in the stream:
// it must come back as an error, with the output that led to it.
func TestBuildStreamErrorIsReported(t *testing.T) {
	stream := `{"stream":"Step 1/3 : FROM pgha/base:trixie\n"}
{"stream":"Step 2/3 : RUN apt-get install -y postgresql-99\n"}
{"stream":"E: Unable to locate package postgresql-99\n"}
{"errorDetail":{"code":100,"message":"The command '/bin/sh -c apt-get install -y postgresql-99' returned a non-zero code: 100"},"error":"The command '/bin/sh -c apt-get install -y postgresql-99' returned a non-zero code: 100"}
`
	rec := &recorder{}
	s := &Supplier{Progress: rec}
	err := s.readJSONStream(strings.NewReader(stream))
	if err == nil {
		t.Fatal("a failed build was taken for a success")
	}
	for _, want := range []string{"returned a non-zero code: 100", "E: Unable to locate package postgresql-99"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if len(rec.details) != 3 {
		t.Errorf("progress saw %d lines, want 3: %q", len(rec.details), rec.details)
	}
	if err := s.readJSONStream(strings.NewReader(`{"stream":"Successfully built abc\n"}`)); err != nil {
		t.Errorf("a good stream: %v", err)
	}
}

func TestContextHashChangesWithTheContext(t *testing.T) {
	files, err := contextFiles("patroni")
	if err != nil || len(files["Dockerfile"]) == 0 || len(files["entrypoint.sh"]) == 0 {
		t.Fatalf("embedded patroni context: %v, %d files", err, len(files))
	}
	spec := &buildSpec{dir: "patroni", base: OfflineBaseRef, offlineBase: true}
	h1 := contextHash(spec, files)
	if h2 := contextHash(spec, files); h1 != h2 || len(h1) != 12 {
		t.Fatalf("hash not stable: %s %s", h1, h2)
	}
	changed := map[string][]byte{}
	for k, v := range files {
		changed[k] = v
	}
	changed["entrypoint.sh"] = append([]byte{}, append(files["entrypoint.sh"], '\n')...)
	if contextHash(spec, changed) == h1 {
		t.Error("a changed file kept the hash")
	}
	if contextHash(&buildSpec{base: UbuntuBase}, files) == h1 {
		t.Error("another base kept the hash")
	}
}
