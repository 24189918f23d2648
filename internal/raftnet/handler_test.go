package raftnet_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/raftnet"
	"github.com/argent-kv/argent/internal/wire"
)

// streamRequest returns a request that opens a stream from member 1 to m
// (or from 2 if m is member 1) with body, as a Transport would.
func streamRequest(t *testing.T, m *member, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, m.srv.URL+raftnet.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(raftnet.HeaderProtocol, raftnet.ProtocolVersion)
	from := uint64(1)
	if m.id == 1 {
		from = 2
	}
	req.Header.Set(raftnet.HeaderFrom, strconv.FormatUint(from, 10))
	req.Header.Set(raftnet.HeaderTo, strconv.FormatUint(m.id, 10))
	req.Header.Set(raftnet.HeaderGroup, testGroup.String())
	return req
}

// frame returns the frame of m.
func frame(t *testing.T, m *raftpb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return wire.AppendFrame(nil, wire.FrameRaftMessage, b)
}

// A stream whose headers do not match the receiver, or that is not a POST,
// is refused with the API's JSON error and a log line.
func TestHandler_Refuses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		edit       func(*http.Request)
		wantStatus int
		wantCode   string
	}{
		{name: "WrongMethod", edit: func(r *http.Request) { r.Method = http.MethodGet }, wantStatus: 405, wantCode: apiwire.CodeInvalid},
		{name: "NoVersion", edit: func(r *http.Request) { r.Header.Del(raftnet.HeaderProtocol) }, wantStatus: 400, wantCode: apiwire.CodeInvalid},
		{name: "OtherVersion", edit: func(r *http.Request) { r.Header.Set(raftnet.HeaderProtocol, "2") }, wantStatus: 400, wantCode: apiwire.CodeInvalid},
		{name: "WrongReceiver", edit: func(r *http.Request) { r.Header.Set(raftnet.HeaderTo, "3") }, wantStatus: 421, wantCode: apiwire.CodeInvalid},
		{name: "BadReceiver", edit: func(r *http.Request) { r.Header.Set(raftnet.HeaderTo, "two") }, wantStatus: 400, wantCode: apiwire.CodeInvalid},
		{name: "NoSender", edit: func(r *http.Request) { r.Header.Del(raftnet.HeaderFrom) }, wantStatus: 400, wantCode: apiwire.CodeInvalid},
		{name: "SenderIsReceiver", edit: func(r *http.Request) { r.Header.Set(raftnet.HeaderFrom, "2") }, wantStatus: 400, wantCode: apiwire.CodeInvalid},
		{name: "BadGroup", edit: func(r *http.Request) { r.Header.Set(raftnet.HeaderGroup, "zz") }, wantStatus: 400, wantCode: apiwire.CodeInvalid},
		{name: "OtherGroup", edit: func(r *http.Request) { r.Header.Set(raftnet.HeaderGroup, strings.Repeat("0f", 16)) }, wantStatus: 409, wantCode: apiwire.CodeDatasetMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newMember(t, 2)
			req := streamRequest(t, b, bytes.NewReader(frame(t, msg(1, 2, 1))))
			tc.edit(req)
			resp, err := b.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body apiwire.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("decode answer: %v", err)
			}
			if resp.StatusCode != tc.wantStatus || body.Error.Code != tc.wantCode {
				t.Errorf("answer %d %q (%s), want %d %q", resp.StatusCode, body.Error.Code, body.Error.Message, tc.wantStatus, tc.wantCode)
			}
			if tc.name != "WrongMethod" && len(b.logs.matching("WARN", "stream refused")) != 1 {
				t.Errorf("no log line of the refusal: %q", b.logs.matching(""))
			}
			if n := b.got.len(); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}

// A frame that fails its checks ends the stream: the messages before it
// are delivered, none after; the receiver logs it as corruption and tells
// the sender why.
func TestHandler_CorruptFrame(t *testing.T) {
	flip := func(i int) func([]byte) []byte {
		return func(f []byte) []byte { f[i] ^= 0x10; return f }
	}
	for _, tc := range []struct {
		name string
		bad  func(t *testing.T) []byte // the second frame
	}{
		{name: "PayloadBitFlip", bad: func(t *testing.T) []byte { f := frame(t, msg(1, 2, 2)); return flip(len(f) - 3)(f) }},
		{name: "LengthBitFlip", bad: func(t *testing.T) []byte { return flip(2)(frame(t, msg(1, 2, 2))) }},
		{name: "Truncated", bad: func(t *testing.T) []byte { f := frame(t, msg(1, 2, 2)); return f[:len(f)-2] }},
		{name: "NotAMessage", bad: func(*testing.T) []byte { return wire.AppendFrame(nil, wire.FrameRaftMessage, []byte{0x08}) }},
		{name: "OtherFrameType", bad: func(t *testing.T) []byte {
			b, _ := proto.Marshal(msg(1, 2, 2))
			return wire.AppendFrame(nil, wire.FrameEntry, b)
		}},
		{name: "NotForThisMember", bad: func(t *testing.T) []byte { return frame(t, msg(1, 3, 2)) }},
		{name: "NotFromTheSender", bad: func(t *testing.T) []byte { return frame(t, msg(3, 2, 2)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newMember(t, 2)
			var body []byte
			body = append(body, frame(t, msg(1, 2, 1))...)
			body = append(body, tc.bad(t)...)
			if tc.name != "Truncated" {
				body = append(body, frame(t, msg(1, 2, 3))...)
			}
			resp, err := b.srv.Client().Do(streamRequest(t, b, bytes.NewReader(body)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			reason, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read answer: %v", err)
			}
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(reason), "corruption") {
				t.Errorf("answer %d %q, want 200 and the reason", resp.StatusCode, reason)
			}
			if got := b.got.from(1); len(got) != 1 || got[0] != 1 {
				t.Errorf("delivered %v, want [1]", got)
			}
			// A stream that ends inside a frame was cut (a sender killed
			// mid-write looks the same): logged as a cut, not as damage.
			level, line := "ERROR", "corrupt stream closed"
			if tc.name == "Truncated" {
				level, line = "DEBUG", "stream cut"
			}
			if got := b.logs.matching(level, line, "from=1"); len(got) != 1 {
				t.Errorf("log lines about the stream's end: %q, want 1 %s %q", b.logs.matching(""), level, line)
			}
		})
	}
}

// A sender has one stream at a time: a new stream from it ends the old one
// before its messages are delivered.
func TestHandler_NewStreamReplacesOld(t *testing.T) {
	b := newMember(t, 2)
	open := func() (*io.PipeWriter, *http.Response) {
		pr, pw := io.Pipe()
		resp, err := b.srv.Client().Do(streamRequest(t, b, pr))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("answer %d", resp.StatusCode)
		}
		return pw, resp
	}
	pw1, resp1 := open()
	defer pw1.Close()
	defer resp1.Body.Close()
	if _, err := pw1.Write(frame(t, msg(1, 2, 1))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first message", func() bool { return b.got.len() == 1 })

	pw2, resp2 := open()
	defer pw2.Close()
	defer resp2.Body.Close()
	reason, _ := io.ReadAll(resp1.Body)
	if !strings.Contains(string(reason), "stream closed") {
		t.Errorf("the old stream ended with %q", reason)
	}
	if _, err := pw2.Write(frame(t, msg(1, 2, 2))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second message", func() bool { return b.got.len() == 2 })
}
