//go:build race

package proxycache_test

// raceEnabled is true when the tests run under the race detector, which
// makes Pebble about ten times slower: the random tests do fewer runs then.
const raceEnabled = true
