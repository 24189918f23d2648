package tests

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestKVModel checks the linearizability model on small histories, so that a
// pass of TestRoot_Linearizable means something.
func TestKVModel(t *testing.T) {
	op := func(client int, call, ret int64, in linInput, out linOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
	}
	put := func(v string) linInput { return linInput{op: "put", key: "k", val: v} }
	get := linInput{op: "get", key: "k"}
	cas := func(expect uint64, v string) linInput {
		return linInput{op: "cas", key: "k", val: v, expect: idx(expect)}
	}
	tests := []struct {
		name    string
		history []porcupine.Operation
		want    bool
	}{
		{name: "ReadAfterPut", want: true, history: []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{index: 1}),
			op(1, 2, 3, get, linOutput{present: true, val: "a", mod: 1, s: 1}),
		}},
		{name: "StaleRead", want: false, history: []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{index: 1}),
			op(0, 2, 3, put("b"), linOutput{index: 2}),
			op(1, 4, 5, get, linOutput{present: true, val: "a", mod: 1, s: 2}),
		}},
		{name: "WrongModIndex", want: false, history: []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{index: 3}),
			op(1, 2, 3, get, linOutput{present: true, val: "a", mod: 2, s: 3}),
		}},
		{name: "IndexesGoBack", want: false, history: []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{index: 5}),
			op(0, 2, 3, put("b"), linOutput{index: 4}),
		}},
		{name: "ConcurrentPuts", want: true, history: []porcupine.Operation{
			op(0, 0, 10, put("a"), linOutput{index: 2}),
			op(1, 0, 10, put("b"), linOutput{index: 1}),
			op(2, 11, 12, get, linOutput{present: true, val: "a", mod: 2, s: 2}),
		}},
		{name: "CASHolds", want: true, history: []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{index: 1}),
			op(0, 2, 3, cas(1, "b"), linOutput{index: 2}),
			op(0, 4, 5, cas(1, "c"), linOutput{failed: true}),
			op(1, 6, 7, get, linOutput{present: true, val: "b", mod: 2, s: 2}),
		}},
		{name: "CASOnWrongMod", want: false, history: []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{index: 1}),
			op(0, 2, 3, cas(7, "b"), linOutput{index: 2}),
		}},
		{name: "CASAbsentFailed", want: false, history: []porcupine.Operation{
			op(0, 0, 1, cas(0, "b"), linOutput{failed: true}),
		}},
		{name: "UnknownPutMayApply", want: true, history: []porcupine.Operation{
			op(0, 0, 1<<62, put("a"), linOutput{unknown: true}),
			op(1, 2, 3, get, linOutput{present: true, val: "a", mod: 9, s: 9}),
			op(1, 4, 5, cas(9, "b"), linOutput{index: 10}),
		}},
		{name: "UnknownPutMayNotApply", want: true, history: []porcupine.Operation{
			op(0, 0, 1<<62, put("a"), linOutput{unknown: true}),
			op(1, 2, 3, get, linOutput{s: 0}),
		}},

		// Merged batches (docs/CONTRACT.md section 1): writes acknowledged with one
		// index take effect in the order of their ops in the entry.
		{name: "MergedPuts", want: true, history: []porcupine.Operation{
			op(0, 0, 10, put("a"), linOutput{index: 2, pos: 1}),
			op(1, 0, 10, put("b"), linOutput{index: 2, pos: 0}),
			op(2, 11, 12, get, linOutput{present: true, val: "a", mod: 2, s: 2}),
		}},
		{name: "MergedPutsReadOutOfOrder", want: false, history: []porcupine.Operation{
			op(0, 0, 10, put("a"), linOutput{index: 2, pos: 1}),
			op(1, 0, 10, put("b"), linOutput{index: 2, pos: 0}),
			op(2, 11, 12, get, linOutput{present: true, val: "b", mod: 2, s: 2}),
		}},
		{name: "MergedSamePosition", want: false, history: []porcupine.Operation{
			op(0, 0, 10, put("a"), linOutput{index: 2, pos: 0}),
			op(1, 0, 10, put("b"), linOutput{index: 2, pos: 0}),
		}},
		{name: "MergedCASOnEarlierBatch", want: true, history: []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{index: 1}),
			op(0, 2, 10, put("b"), linOutput{index: 2, pos: 0}),
			op(1, 2, 10, cas(2, "c"), linOutput{index: 2, pos: 3}),
			op(2, 11, 12, get, linOutput{present: true, val: "c", mod: 2, s: 2}),
		}},
		{name: "MergedCASBeforeItsCause", want: false, history: []porcupine.Operation{
			op(0, 0, 1, put("a"), linOutput{index: 1}),
			op(0, 2, 10, put("b"), linOutput{index: 2, pos: 3}),
			op(1, 2, 10, cas(2, "c"), linOutput{index: 2, pos: 0}),
		}},
		{name: "UnknownPutInSameEntry", want: true, history: []porcupine.Operation{
			op(0, 0, 1<<62, put("a"), linOutput{unknown: true}),
			op(1, 0, 10, put("b"), linOutput{index: 2, pos: 0}),
			op(2, 11, 12, get, linOutput{present: true, val: "a", mod: 2, s: 2}),
		}},
	}
	model := kvModel.ToModel()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(model, tt.history); got != tt.want {
				t.Fatalf("linearizable = %v, want %v", got, tt.want)
			}
		})
	}
}
