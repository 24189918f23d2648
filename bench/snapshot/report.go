package main

import (
	"fmt"
	"io"
	"strings"
)

func mb(b float64) float64 { return b / 1e6 }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// print writes the report as markdown, as far as the run got.
func (r *result) print(w io.Writer) {
	cfg := r.cfg
	fmt.Fprintf(w, "### snapshot: bootstrap of a replica from a root holding %d keys x %d B\n\n", cfg.keys, cfg.value)
	fmt.Fprintf(w, "%s UTC, loadavg %s. Root args %q, replica args %q, both %q",
		r.started.Format("2006-01-02 15:04:05"), r.loadavg, cfg.rootArgs, cfg.replicaArgs, cfg.nodeArgs)
	if cfg.tmpdir != "" {
		fmt.Fprintf(w, ", data directories under %s", cfg.tmpdir)
	}
	fmt.Fprint(w, ".\n\n")
	if r.root == nil {
		return
	}
	secs := r.loadTook.Seconds()
	if r.loaded > 0 && secs > 0 {
		fmt.Fprintf(w, "Load: %d keys in %d txns of %d puts (%d in flight) through POST /v1/txn in %.2f s: %.0f keys/s, %.1f MB/s of keys+values (%.1f MB), last index %d.\n",
			r.loaded, r.txns, cfg.batch, cfg.writers, secs, float64(r.loaded)/secs, mb(float64(r.dataBytes))/secs, mb(float64(r.dataBytes)), r.lastIndex)
		if r.loadCPU.OK && len(r.loadCPU.PIDs) > 0 {
			fmt.Fprintf(w, "CPU during the load: root %.2f cores (%.1f CPU-us/key), this process %.2f, others %.2f, machine %.2f of 2.\n",
				r.loadCPU.PIDs[0], r.loadCPU.PIDs[0]*r.loadCPU.Wall*1e6/float64(r.loaded), r.loadCPU.Self, r.loadCPU.Other(), r.loadCPU.Machine)
		}
	}
	if r.logFirst > 0 {
		fmt.Fprintf(w, "Log trimmed %.1f s after the load: argent_log_first_index %.0f (root data dir %.0f MiB).\n",
			r.trimWait.Seconds(), r.logFirst, mib(r.rootDisk))
	}
	fmt.Fprintln(w)
	if !r.done {
		fmt.Fprintln(w, "The replica did not finish.")
		return
	}
	t := r.took.Seconds()
	fmt.Fprintln(w, "| bootstrap | |")
	fmt.Fprintln(w, "|---|---|")
	fmt.Fprintf(w, "| process start to applied_index = root's (%d) | **%.2f s** |\n", r.lastIndex, t)
	fmt.Fprintf(w, "| of which start to /v1/status answering | %.2f s |\n", r.ready.Seconds())
	fmt.Fprintf(w, "| keys/s | **%.0f** |\n", float64(r.loaded)/t)
	fmt.Fprintf(w, "| MB/s of keys+values (%.1f MB) | **%.1f** |\n", mb(float64(r.dataBytes)), mb(float64(r.dataBytes))/t)
	recv := r.replStats["argent_log_bytes_received_total"]
	fmt.Fprintf(w, "| MB/s on the wire (argent_log_bytes_received_total %.1f MB) | %.1f |\n", mb(recv), mb(recv)/t)
	fmt.Fprintf(w, "| snapshots loaded / records received / resumes | %.0f / %.0f / %.0f |\n",
		r.replStats["argent_snapshots_loaded_total"], r.replStats["argent_snapshot_records_received_total"], r.replStats["argent_snapshot_resumes_total"])
	fmt.Fprintf(w, "| root: too-old answers / snapshots served | %.0f / %.0f |\n",
		r.rootStats["argent_log_too_old_total"], r.rootStats["argent_snapshots_served_total"])
	fmt.Fprintf(w, "| replica peak RSS (VmHWM) | **%.0f MiB** (largest VmRSS seen %.0f MiB) |\n", mib(r.hwm), mib(r.maxRSS))
	if heap, ok := r.replStats["go_memstats_heap_sys_bytes"]; ok {
		fmt.Fprintf(w, "| replica Go heap at the end (go_memstats_heap_sys_bytes) | %.0f MiB |\n", heap/(1<<20))
	}
	fmt.Fprintf(w, "| root peak RSS (VmHWM) | %.0f MiB |\n", mib(r.rootHWM))
	fmt.Fprintf(w, "| replica data dir / root data dir | %.0f MiB / %.0f MiB |\n", mib(r.replDisk), mib(r.rootDisk))
	fmt.Fprintf(w, "| replica CPU | %.2f CPU-s (%.2f cores, %.1f CPU-us/key) |\n", r.replCPU, r.replCPU/t, r.replCPU*1e6/float64(r.loaded))
	if r.bootCPU.OK && len(r.bootCPU.PIDs) > 0 {
		fmt.Fprintf(w, "| root CPU during the bootstrap | %.2f cores |\n", r.bootCPU.PIDs[0])
		fmt.Fprintf(w, "| machine busy during the bootstrap | %.2f of 2 cores (this process %.2f) |\n", r.bootCPU.Machine, r.bootCPU.Self)
	}
	if r.verified > 0 {
		res := "identical"
		if len(r.mismatches) > 0 {
			res = fmt.Sprintf("%d differ, e.g. %s", len(r.mismatches), strings.Join(r.mismatches[:min(3, len(r.mismatches))], ", "))
		}
		fmt.Fprintf(w, "| %d random keys, mget at root and replica at index %d | %s |\n", r.verified, r.lastIndex, res)
	}
	fmt.Fprintln(w)
}
