// Package benchnode starts argent nodes for the benchmark commands under
// bench/ and measures their CPU and memory.
//
// A [Cluster] runs real argent processes on 127.0.0.1, each with a free
// port, a data directory and a log in one temporary directory, waits until
// they answer /v1/status, and stops them by PID at the end;
// [Cluster.StartProcess] runs a peer (etcd, Redis) the same way, so that a
// comparison stops every server it started. [Proc] reads a
// node's /v1/status and /metrics. [SampleCPU] and [CPUBetween] say where the
// machine's CPU went during a measured interval (this process, each node,
// and everything else), from /proc on Linux; [ProcMem], [DirSize] and
// [Loadavg] give a node's resident memory, its data on disk, and the
// machine's load.
package benchnode
