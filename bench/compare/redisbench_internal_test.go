package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRedisBenchmarkCSV(t *testing.T) {
	tests := []struct {
		name string
		in   string
		test string
		rps  float64
		p99  float64
		err  bool
	}{
		{"Get", `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"GET","50125.32","0.645","0.176","0.623","1.031","1.167","2.631"
`, "GET", 50125.32, 1.167, false},
		{"Custom", `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"MGET key:__rand_int__ key:__rand_int__","26666.67","1.279","0.128","0.511","5.303","7.271","7.671"
`, "MGET key:__rand_int__ key:__rand_int__", 26666.67, 7.271, false},
		{"HeaderOnly", `"test","rps"` + "\n", "", 0, 0, true},
		{"MissingColumn", "\"test\",\"rps\"\n\"GET\",\"1\"\n", "", 0, 0, true},
		{"NotANumber", `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"GET","fast","0.645","0.176","0.623","1.031","1.167","2.631"
`, "", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r rbResult
			err := parseRedisBenchmarkCSV([]byte(tt.in), &r)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err == nil && (r.Test != tt.test || r.RPS != tt.rps || r.P99 != tt.p99 || r.P50 == 0 || r.Max == 0) {
				t.Errorf("got %+v", r)
			}
		})
	}
}

func TestRBCommand_Args(t *testing.T) {
	get := rbCommand{name: "get", keys: 1}.args("6379", 50, 16, 1000, 100_000)
	want := []string{"-h", "127.0.0.1", "-p", "6379", "-c", "50", "-n", "1000", "-r", "100000", "-P", "16", "--csv", "-t", "get"}
	if !slices.Equal(get, want) {
		t.Errorf("get args %q, want %q", get, want)
	}
	mget := rbCommand{name: "mget", keys: 3}.args("7000", 50, 1, 10, 5)
	if got := strings.Join(mget[len(mget)-4:], " "); got != "MGET key:__rand_int__ key:__rand_int__ key:__rand_int__" {
		t.Errorf("mget command %q", got)
	}
}

func TestParseInfoField(t *testing.T) {
	info := "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nslave_repl_offset:1234\r\n"
	for field, want := range map[string]string{"role": "slave", "master_link_status": "up", "slave_repl_offset": "1234", "nope": ""} {
		if got := parseInfoField(info, field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
}

func TestRedisPort(t *testing.T) {
	if p, err := redisPort("127.0.0.1:6380"); err != nil || p != "6380" {
		t.Errorf("redisPort = %q, %v", p, err)
	}
	if _, err := redisPort("localhost"); err == nil {
		t.Error("no error for an address without a port")
	}
}
