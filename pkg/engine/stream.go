package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/pkg/jsonmessage"
)

// ReadJSONStream reads a build, pull, import or load stream to its end and
// returns the error it reports, with the output lines that led to it: the
// engine answers 200 to a failing build and puts the error in the stream.
// onLine, when set, sees every line.
func ReadJSONStream(r io.Reader, onLine func(string)) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading the engine's output: %w", err)
		}
		if m.Error != nil {
			msg := m.Error.Message
			if len(tail) > 0 {
				msg += "\n--- last output ---\n" + strings.Join(tail, "\n")
			}
			return errors.New(msg)
		}
		line := strings.TrimSpace(m.Stream)
		if line == "" {
			line = strings.TrimSpace(m.Status + " " + m.ID)
		}
		if line == "" {
			continue
		}
		if onLine != nil {
			onLine(line)
		}
		tail = append(tail, line)
		if len(tail) > 15 {
			tail = tail[1:]
		}
	}
}
