package rawhttp

// hexDigits are the digits of a percent-encoding and of a JSON \u escape.
const hexDigits = "0123456789ABCDEF"

// AppendKeyPath appends /v1/kv/{key} to b, with every byte of key other
// than A-Z a-z 0-9 - . _ ~ and / percent-encoded (argent's server takes a
// literal / inside a key; client.Client encodes it too, which costs two
// bytes per slash for nothing here). The keys "." and ".." are encoded whole.
func AppendKeyPath(b, key []byte) []byte {
	b = append(b, "/v1/kv/"...)
	dots := string(key) == "." || string(key) == ".."
	for _, c := range key {
		if !dots && (unreserved(c) || c == '/') {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// AppendMGetBody appends the JSON {"keys":[...]} of an mget request to b.
// Keys are written as JSON strings: quote, backslash and control bytes are
// escaped, other bytes copied (the benchmarks' keys are ASCII).
func AppendMGetBody(b []byte, keys [][]byte) []byte {
	b = append(b, `{"keys":[`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
	}
	return append(b, "]}"...)
}

func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
