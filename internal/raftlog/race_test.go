//go:build race

package raftlog_test

// raceEnabled is true when the tests run under the race detector, which
// makes Pebble much slower: the random tests do fewer runs then.
const raceEnabled = true
