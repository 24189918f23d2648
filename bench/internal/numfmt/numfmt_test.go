package numfmt

import "testing"

func TestThousands(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1,000"}, {1234567, "1,234,567"},
		{-1, "-1"}, {-1000, "-1,000"}, {-123456, "-123,456"},
	} {
		if got := Thousands(tc.n); got != tc.want {
			t.Errorf("Thousands(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestBytesMicros(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Bytes(512), "512 B"}, {Bytes(3 << 20), "3.00 MiB"}, {Bytes(307 << 10), "307 KiB"}, {Bytes(15 << 30), "15.0 GiB"},
		{Micros(48), "48 µs"}, {Micros(4420), "4.42 ms"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
