// Package mdsection rewrites a generated section of a markdown file: the
// text between a begin and an end marker comment, so that a benchmark's rerun
// replaces its own results and leaves hand-written text alone.
package mdsection

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Replace returns doc with the text from begin to end (both included)
// replaced by section, which should start with begin and end with end, or
// with section appended when doc has no such pair of markers.
func Replace(doc, begin, end, section string) string {
	section = strings.TrimRight(section, "\n")
	i := strings.Index(doc, begin)
	j := -1
	if i >= 0 {
		if k := strings.Index(doc[i:], end); k >= 0 {
			j = i + k
		}
	}
	if j < 0 {
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		if doc != "" {
			doc += "\n"
		}
		return doc + section + "\n"
	}
	return doc[:i] + section + doc[j+len(end):]
}

// UpdateFile replaces the section from begin to end of the markdown file
// at path with section (see Replace), creating the file if it is missing.
func UpdateFile(path, begin, end, section string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("docs: %w", err)
	}
	if err := os.WriteFile(path, []byte(Replace(string(b), begin, end, section)), 0o644); err != nil {
		return fmt.Errorf("docs: %w", err)
	}
	return nil
}

// Check returns an error unless doc holds begin exactly once and end
// exactly once after it: the shape Replace needs to rewrite the section in
// place rather than append a second copy.
func Check(doc, begin, end string) error {
	nb, ne := strings.Count(doc, begin), strings.Count(doc, end)
	switch {
	case nb != 1 || ne != 1:
		return fmt.Errorf("want %s and %s once each, found %d and %d", begin, end, nb, ne)
	case strings.Index(doc, end) < strings.Index(doc, begin):
		return fmt.Errorf("%s comes before %s", end, begin)
	}
	return nil
}
