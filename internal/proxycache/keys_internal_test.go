package proxycache

import (
	"bytes"
	"errors"
	"testing"

	"github.com/argent-kv/argent"
)

func TestEntry_EncodeDecode(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{name: "Present", e: Entry{Present: true, Value: argent.Value{Value: []byte("value"), ModIndex: 7}, Since: 9}},
		{name: "PresentEmptyValue", e: Entry{Present: true, Value: argent.Value{Value: []byte{}, ModIndex: 1}, Since: 1}},
		{name: "Absent", e: Entry{Value: argent.Value{ModIndex: 3}, Since: 3}},
		{name: "AbsentUnknownDelete", e: Entry{Since: 12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEntry(encodeEntry(&tt.e))
			if err != nil {
				t.Fatal(err)
			}
			if got.Present != tt.e.Present || !bytes.Equal(got.Value.Value, tt.e.Value.Value) || got.ModIndex != tt.e.ModIndex || got.Since != tt.e.Since {
				t.Errorf("decode(encode(%+v)) = %+v", tt.e, got)
			}
		})
	}
}

func TestDecodeEntry_Corrupt(t *testing.T) {
	tests := []struct {
		name string
		v    []byte
	}{
		{name: "Empty", v: nil},
		{name: "Short", v: make([]byte, recordHeader-1)},
		{name: "UnknownFlag", v: append([]byte{0x80}, make([]byte, recordHeader-1)...)},
		{name: "AbsentWithValue", v: append(make([]byte, recordHeader), 'x')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeEntry(tt.v); !errors.Is(err, argent.ErrCorruption) {
				t.Errorf("decodeEntry(%x) = %v, want ErrCorruption", tt.v, err)
			}
		})
	}
}

func TestPrefixBounds(t *testing.T) {
	tests := []struct {
		name         string
		prefix       string
		lower, upper string
	}{
		{name: "Plain", prefix: "ab", lower: "eab", upper: "eac"},
		{name: "Empty", prefix: "", lower: "e", upper: "f"},
		{name: "TrailingFF", prefix: "a\xff", lower: "ea\xff", upper: "eb"},
		{name: "AllFF", prefix: "\xff\xff", lower: "e\xff\xff", upper: "f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lower, upper := prefixBounds([]byte(tt.prefix))
			if string(lower) != tt.lower || string(upper) != tt.upper {
				t.Errorf("prefixBounds(%q) = %q, %q; want %q, %q", tt.prefix, lower, upper, tt.lower, tt.upper)
			}
		})
	}
}
