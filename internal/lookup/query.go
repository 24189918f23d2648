package lookup

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/argent-kv/argent"
)

// invalidf returns an argent.ErrInvalid error.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: lookup: "+format, append([]any{argent.ErrInvalid}, args...)...)
}

// ParseQuery parses the raw query, refusing malformed escapes that
// url.Values would silently drop.
func ParseQuery(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, invalidf("query: %v", err)
	}
	return q, nil
}

// Param returns the single value of parameter name: absent or repeated is
// invalid, so that a proxy's bug never reads another key or index than meant.
func Param(q url.Values, name string) (string, error) {
	vs, ok := q[name]
	switch {
	case !ok:
		return "", invalidf("missing %s", name)
	case len(vs) != 1:
		return "", invalidf("%s given %d times", name, len(vs))
	}
	return vs[0], nil
}

// IndexParam parses a required index parameter.
func IndexParam(q url.Values, name string) (argent.Index, error) {
	v, err := Param(q, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, invalidf("%s=%q is not an index", name, v)
	}
	return argent.Index(n), nil
}

// optionalIndex parses an index parameter that may be absent (0).
func optionalIndex(q url.Values, name string) (argent.Index, error) {
	if _, ok := q[name]; !ok {
		return 0, nil
	}
	return IndexParam(q, name)
}

// optional returns the value of parameter name and whether it was given:
// absent is "", false; repeated is invalid, as for one.
func optional(q url.Values, name string) (string, bool, error) {
	if _, ok := q[name]; !ok {
		return "", false, nil
	}
	v, err := Param(q, name)
	return v, err == nil, err
}
