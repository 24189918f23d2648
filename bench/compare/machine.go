package main

import (
	"context"
	"runtime"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// machine is what the results were measured on.
type machine struct {
	NProc          int    `json:"nproc"`
	CPUModel       string `json:"cpu_model"`
	Kernel         string `json:"kernel"`
	Go             string `json:"go"`
	Etcd           string `json:"etcd"`
	RedisServer    string `json:"redis_server"`
	RedisBenchmark string `json:"redis_benchmark"`
	Tree           string `json:"tree"` // git commit of the argent tree, "+dirty" with uncommitted changes
	LoadStart      string `json:"loadavg_start"`
	LoadEnd        string `json:"loadavg_end,omitempty"`
}

// describeMachine collects the machine's facts and the versions of the
// programs; what it cannot find it leaves as "?".
func describeMachine(ctx context.Context, b bins) machine {
	return machine{
		NProc:          runtime.NumCPU(),
		CPUModel:       benchnode.CPUModel(),
		Kernel:         benchnode.Kernel(),
		Go:             runtime.Version(),
		Etcd:           benchnode.Version(ctx, b.etcd, "--version"),
		RedisServer:    benchnode.Version(ctx, b.redisServer, "--version"),
		RedisBenchmark: benchnode.Version(ctx, b.redisBenchmark, "--version"),
		Tree:           benchnode.TreeRev(ctx),
		LoadStart:      benchnode.Loadavg(),
	}
}
