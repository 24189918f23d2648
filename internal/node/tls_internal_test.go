package node

import (
	"net"
	"testing"
)

func TestExposedPlain(t *testing.T) {
	for _, tc := range []struct {
		addr string
		tls  bool
		want bool
	}{
		{"127.0.0.1:7400", false, false},
		{"[::1]:7400", false, false},
		{"0.0.0.0:7400", false, true},
		{"[::]:7400", false, true},
		{"10.0.0.7:7400", false, true},
		{"10.0.0.7:7400", true, false},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := exposedPlain(a, tc.tls); got != tc.want {
			t.Errorf("exposedPlain(%s, tls=%v) = %v, want %v", tc.addr, tc.tls, got, tc.want)
		}
	}
}
