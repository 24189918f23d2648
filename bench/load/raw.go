package main

import (
	"fmt"
	"strconv"

	"github.com/argent-kv/argent/bench/internal/rawhttp"
)

// keyPrefix is the prefix of every benchmark key: bench/key/%08d.
const keyPrefix = "bench/key/"

// putKey writes n as eight decimal digits into b[:8].
func putKey(b []byte, n int) {
	for i := 7; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
}

// keyName returns the name of key n.
func keyName(n int) string { return fmt.Sprintf(keyPrefix+"%08d", n) }

// rawConn is the minimal HTTP/1.1 client of bench/internal/rawhttp with
// this program's numbered keys: the GET request is built once and only its
// eight key digits change, so a request costs no formatting at all.
type rawConn struct {
	*rawhttp.Conn

	get    []byte // a prebuilt GET request
	getKey int    // offset of the key digits in get
	wbuf   []byte // PUT and mget requests are assembled here
	body   []byte // mget bodies are assembled here
}

func newRawConn(addr string) *rawConn {
	c := &rawConn{Conn: rawhttp.New(addr)}
	c.get = append([]byte("GET /v1/kv/"+keyPrefix), "00000000"...)
	c.getKey = len(c.get) - 8
	c.get = append(append(c.get, c.Tail()...), "\r\n"...)
	return c
}

// Get sends GET /v1/kv/bench/key/N.
func (c *rawConn) Get(key int) (int, int, error) {
	putKey(c.get[c.getKey:], key)
	return c.RoundTrip(c.get)
}

// Put sends PUT /v1/kv/bench/key/N with value as the body.
func (c *rawConn) Put(key int, value []byte) (int, int, error) {
	b := append(c.wbuf[:0], "PUT /v1/kv/"+keyPrefix...)
	b = append(b, "00000000"...)
	putKey(b[len(b)-8:], key)
	b = append(b, c.Tail()...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(value)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, value...)
	c.wbuf = b
	return c.RoundTrip(b)
}

// MGet sends POST /v1/mget for keys.
func (c *rawConn) MGet(keys []int) (int, int, error) {
	body := append(c.body[:0], `{"keys":[`...)
	for i, k := range keys {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `"`+keyPrefix+`00000000"`...)
		putKey(body[len(body)-9:], k)
	}
	body = append(body, "]}"...)
	c.body = body
	return c.Post("/v1/mget", body)
}
