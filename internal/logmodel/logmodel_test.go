package logmodel

import (
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

func app(client int, payload string, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: Input{Stream: 1, Append: true, Payload: payload}, Output: Output{}, Call: call, Return: ret}
}

func read(client int, from, n uint64, last string, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: Input{Stream: 1, From: from}, Output: Output{N: n, Last: last, End: true}, Call: call, Return: ret}
}

func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"sequential", []porcupine.Operation{app(0, "a", 0, 1), app(0, "b", 2, 3), read(1, 0, 2, "b", 4, 5)}, true},
		{"concurrent appends, either order", []porcupine.Operation{app(0, "a", 0, 10), app(1, "b", 0, 10), read(2, 0, 2, "a", 11, 12)}, true},
		{"stale read after an acknowledged append", []porcupine.Operation{app(0, "a", 0, 1), app(0, "b", 2, 3), read(1, 0, 1, "a", 4, 5)}, false},
		{"read of a record never appended", []porcupine.Operation{app(0, "a", 0, 1), read(1, 0, 1, "x", 2, 3)}, false},
		{"read sees more than was appended", []porcupine.Operation{app(0, "a", 0, 1), read(1, 0, 2, "a", 2, 3)}, false},
		{"unknown append that happened", []porcupine.Operation{
			{ClientId: 0, Input: Input{Stream: 1, Append: true, Payload: "a"}, Output: Output{Unknown: true}, Call: 0, Return: 1 << 62},
			read(1, 0, 1, "a", 5, 6)}, true},
		{"unknown append that did not happen", []porcupine.Operation{
			{ClientId: 0, Input: Input{Stream: 1, Append: true, Payload: "a"}, Output: Output{Unknown: true}, Call: 0, Return: 1 << 62},
			read(1, 0, 0, "", 5, 6)}, true},
		{"a read that goes back in time", []porcupine.Operation{app(0, "a", 0, 1), read(1, 0, 1, "a", 2, 3), read(1, 0, 0, "", 4, 5)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.ok, porcupine.CheckOperations(Model, tc.ops))
		})
	}
}
