// Package demo makes the data set `argent dev` loads: hostname-based egress
// policies for a fleet, the kind of small, read-everywhere configuration
// argent is for.
//
// Keys:
//
//	egress/host/<hostname>   JSON policy for one server
//	egress/dc/<dc>           JSON default policy for a data center
//	fleet/dc/<dc>/hosts      number of hosts in a data center
//
// The data is generated from a fixed seed, so every run loads the same keys.
package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/argent-kv/argent"
)

// DCs are the demo data centers.
var dcs = []string{"ams01", "fra02", "lhr03", "iad04", "sjc05", "nrt06", "sin07", "syd08", "gru09", "jnb10"}

var roles = []string{"web", "api", "cache", "db", "edge", "worker"}

// Policy is one host's egress policy.
type Policy struct {
	Host     string   `json:"host"`
	DC       string   `json:"dc"`
	Role     string   `json:"role"`
	Allow    []string `json:"allow"`
	Deny     []string `json:"deny,omitempty"`
	RateMbps int      `json:"rate_mbps"`
	Version  int      `json:"version"`
}

// Batches returns the demo data set of about hosts hosts as batches of at
// most perBatch operations.
func Batches(hosts, perBatch int) []argent.Batch {
	rng := rand.New(rand.NewPCG(42, 7))
	var ops []argent.Op
	perDC := make(map[string]int)
	for i := 0; i < hosts; i++ {
		dc := dcs[i%len(dcs)]
		role := roles[rng.IntN(len(roles))]
		host := fmt.Sprintf("%s-%04d.%s.example.net", role, i/len(dcs), dc)
		p := Policy{Host: host, DC: dc, Role: role, RateMbps: 100 * (1 + rng.IntN(100)), Version: 1}
		p.Allow = []string{"10.0.0.0/8", fmt.Sprintf("pkg.%s.example.net:443", dc)}
		if role == "api" || role == "edge" {
			p.Allow = append(p.Allow, "0.0.0.0/0:443")
		}
		if rng.IntN(10) == 0 {
			p.Deny = []string{fmt.Sprintf("198.51.100.%d/32", rng.IntN(255))}
		}
		ops = append(ops, put("egress/host/"+host, p))
		perDC[dc]++
	}
	for _, dc := range dcs {
		ops = append(ops, put("egress/dc/"+dc, map[string]any{"dc": dc, "default": "deny", "allow": []string{"10.0.0.0/8"}}))
		ops = append(ops, argent.Op{Type: argent.OpPut, Key: []byte("fleet/dc/" + dc + "/hosts"), Value: []byte(fmt.Sprint(perDC[dc]))})
	}
	var out []argent.Batch
	for len(ops) > 0 {
		n := min(perBatch, len(ops))
		out = append(out, argent.Batch{Ops: ops[:n:n]})
		ops = ops[n:]
	}
	return out
}

// ExampleHost returns the hostname of the first demo host.
func ExampleHost() string { return "egress/host/" + firstHost() }

func firstHost() string {
	rng := rand.New(rand.NewPCG(42, 7))
	return fmt.Sprintf("%s-%04d.%s.example.net", roles[rng.IntN(len(roles))], 0, dcs[0])
}

func put(key string, v any) argent.Op {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("demo: marshal %s: %v", key, err))
	}
	return argent.Op{Type: argent.OpPut, Key: []byte(key), Value: b}
}
