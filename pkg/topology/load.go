package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadFile reads, strictly decodes and validates a topology file.
// Warnings (valid but questionable choices) are returned beside the topology.
func LoadFile(path string) (Cluster, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Cluster{}, nil, fmt.Errorf("reading topology: %w", err)
	}
	c, warnings, err := Parse(data)
	if err != nil {
		return Cluster{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, warnings, nil
}

// Parse strictly decodes a YAML topology (an unknown field is an error that
// names the field and its line), fills defaults and validates it.
func Parse(data []byte) (Cluster, []string, error) {
	c := Cluster{Guard: true, Router: true} // on unless the file says guard: false, router: false
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Cluster{}, nil, errors.New("the topology file is empty")
		}
		return Cluster{}, nil, friendlyYAMLError(err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Cluster{}, nil, errors.New("the topology file holds more than one YAML document")
	}
	c.applyDefaults()
	warnings, err := c.Validate()
	return c, warnings, err
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type topology\.(\w+)`)

// section names the part of the file a Go type stands for.
var section = map[string]string{
	"Cluster": "the top level", "EtcdNode": "an etcd member", "PGNode": "a patroni node", "ObjectStore": "objectStore", "RouterPorts": "routerPorts",
}

// friendlyYAMLError turns yaml's type names into the file's own words.
func friendlyYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = unknownField.ReplaceAllStringFunc(msg, func(m string) string {
		sub := unknownField.FindStringSubmatch(m)
		return fmt.Sprintf("unknown field %q in %s", sub[1], section[sub[2]])
	})
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return fmt.Errorf("invalid topology: %s", strings.Join(lines, "; "))
}

// Marshal writes the topology as YAML, the format LoadFile reads.
func (c Cluster) Marshal() []byte {
	out, err := yaml.Marshal(c)
	if err != nil { // a plain struct of strings and ints always marshals
		panic(err)
	}
	return out
}
