package main

import (
	"slices"
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
		{"Set", `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","31847.13","1.522","0.304","1.463","2.103","2.551","6.335"
`, "SET", 31847.13, 2.551, false},
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
	base := []string{"-h", "127.0.0.1", "-p", "6379", "-c", "50", "-n", "1000", "-r", "100000", "-P", "16", "--csv"}
	tests := []struct {
		name string
		cmd  rbCommand
		tail []string // after base
	}{
		{"Get", rbCommand{name: "get", keys: 1}, []string{"-t", "get"}},
		{"Set", rbCommand{name: "set", keys: 1, value: 256}, []string{"-d", "256", "-t", "set"}},
		{"MGet", rbCommand{name: "mget", keys: 3}, []string{"MGET", "key:__rand_int__", "key:__rand_int__", "key:__rand_int__"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cmd.args("6379", 50, 16, 1000, 100_000)
			if want := append(slices.Clone(base), tt.tail...); !slices.Equal(got, want) {
				t.Errorf("args %q, want %q", got, want)
			}
		})
	}
}

func TestRBCommand_Probe(t *testing.T) {
	tests := []struct {
		name     string
		cmd      rbCommand
		pipeline int
		want     int
	}{
		{"Get", rbCommand{name: "get", keys: 1}, 1, 20_000},
		{"GetPipelined", rbCommand{name: "get", keys: 1}, 16, 100_000},
		{"MGet", rbCommand{name: "mget", keys: 100}, 1, 2_000},
		{"Set", rbCommand{name: "set", keys: 1, value: 256}, 1, 5_000},
		{"SetPipelined", rbCommand{name: "set", keys: 1, value: 256}, 16, 25_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cmd.probe(tt.pipeline); got != tt.want {
				t.Errorf("probe(%d) = %d, want %d", tt.pipeline, got, tt.want)
			}
		})
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
