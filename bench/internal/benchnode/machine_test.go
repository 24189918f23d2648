package benchnode

import "testing"

func TestCPUModelOf(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\nprocessor\t: 1\nmodel name\t: AMD EPYC 9R14\n"
	if got := cpuModelOf(info); got != "AMD EPYC 9R14" {
		t.Errorf("cpuModelOf = %q", got)
	}
	if got := cpuModelOf(""); got != "?" {
		t.Errorf("cpuModelOf of nothing = %q", got)
	}
}

func TestFirstLine(t *testing.T) {
	for in, want := range map[string]string{"": "?", "  \n": "?", "\n a \nb": "a", "etcd Version: 3.4.23\nGit SHA: x": "etcd Version: 3.4.23"} {
		if got := FirstLine(in); got != want {
			t.Errorf("FirstLine(%q) = %q, want %q", in, got, want)
		}
	}
}
