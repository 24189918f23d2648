package main

import (
	"fmt"
	mrand "math/rand/v2"
)

// Keys are 16 to 64 bytes long, like the names of config entries: a
// unique numbered part and a filler of letters, with the length drawn from
// a hash of the number so that the mix is the same on every run and for
// every system.
const (
	minKeyLen = 16
	maxKeyLen = 64
	// maxKeyID keeps key numbers within the eight digits of the key.
	maxKeyID = 100_000_000
	// keyPrefix starts every key of the data sets.
	keyPrefix = "k/"
)

// mix64 is splitmix64's finalizer: a cheap, well-spread hash of a number.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// keyLen is the length of key id: 16..64 bytes, about uniform.
func keyLen(id int) int {
	return minKeyLen + int(mix64(uint64(id))%(maxKeyLen-minKeyLen+1))
}

// appendKey appends key id to b: "k/%08d/" and lowercase letters up to
// keyLen(id). Every byte is safe in a URL path, a JSON string and a Redis
// or etcd key without escaping. id must be in [0, maxKeyID).
func appendKey(b []byte, id int) []byte {
	n := keyLen(id)
	b = append(b, keyPrefix...)
	var digits [8]byte
	for i, v := 7, id; i >= 0; i-- {
		digits[i] = byte('0' + v%10)
		v /= 10
	}
	b = append(b, digits[:]...)
	b = append(b, '/')
	h := mix64(uint64(id) ^ 0x5bd1e995)
	for fill := n - len(keyPrefix) - 9; fill > 0; fill-- {
		b = append(b, byte('a'+h%26))
		h = h/26 ^ mix64(h)
	}
	return b
}

// keyString returns key id as a string.
func keyString(id int) string { return string(appendKey(nil, id)) }

// respKeyName is the name of key id in redis-benchmark's key space:
// "-t get" and "-r N" read "key:" and a 12-digit number in [0, N), 16 bytes.
func respKeyName(id int) string { return fmt.Sprintf("key:%012d", id) }

// valuePool holds random bytes that values are cut from: a value is a
// window of the pool at an offset drawn per key or per write, so that
// making a value costs nothing and the bytes do not compress.
type valuePool struct {
	buf  []byte
	size int // bytes of one value
}

// poolSpan is the number of distinct offsets of a value in the pool.
const poolSpan = 1 << 20

func newValuePool(size int, seed uint64) *valuePool {
	r := mrand.New(mrand.NewPCG(seed, 0x76616c))
	buf := make([]byte, poolSpan+size)
	for i := 0; i+8 <= len(buf); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
	return &valuePool{buf: buf, size: size}
}

// of returns the value of key id (a slice of the pool, not to be changed).
func (p *valuePool) of(id int) []byte {
	off := int(mix64(uint64(id)^0xa0761d64) % poolSpan)
	return p.buf[off : off+p.size]
}

// random returns a value at an offset drawn from r.
func (p *valuePool) random(r *mrand.Rand) []byte {
	off := r.IntN(poolSpan)
	return p.buf[off : off+p.size]
}
