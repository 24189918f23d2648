package resp_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/argent-kv/argent"
)

// TestPipelinesAgainstModel sends random pipelines of reads and writes,
// split into random pieces, sometimes with the client's side shut down at
// the end, and checks that the replies are exactly those of running the
// commands one by one against a map. Reads on the event loop, reads that
// miss locally (keys under "miss/", answered on a goroutine), writes and
// SCANs (always on a goroutine) interleave, so the replies check the hand-offs
// between the loop and the goroutines: order, read-your-writes within the
// pipeline, nothing lost or repeated.
//
// It runs against a backend that writes as Backend.Write does, and against
// one that takes writes without waiting (api.AsyncWriter, as a root): then
// the loop has SETs in flight and must hold every other command until their
// replies are out.
func TestPipelinesAgainstModel(t *testing.T) {
	t.Run("Write", func(t *testing.T) {
		b, _, addr := startServer(t, argent.Limits{})
		pipelinesAgainstModel(t, b, addr)
	})
	t.Run("AsyncWriter", func(t *testing.T) {
		b, _, addr := startAsyncServer(t, argent.Limits{})
		pipelinesAgainstModel(t, b.fakeBackend, addr)
	})
}

func pipelinesAgainstModel(t *testing.T, b *fakeBackend, addr string) {
	b.local.Store(&localReader{Store: b.store})
	var round atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		// Keys of this round only, so the model starts empty.
		prefix := fmt.Sprintf("r%d/", round.Add(1))
		keyGen := rapid.SampledFrom([]string{"a", "b", "miss/c"})
		model := map[string]string{}
		var in, want strings.Builder
		n := rapid.IntRange(1, 40).Draw(rt, "commands")
		for i := range n {
			k := prefix + keyGen.Draw(rt, "key")
			switch rapid.IntRange(0, 8).Draw(rt, "command") {
			case 0:
				v := fmt.Sprintf("v%d", i)
				fmt.Fprintf(&in, "SET %s %s\r\n", k, v)
				model[k] = v
				want.WriteString("+OK\r\n")
			case 1, 2:
				fmt.Fprintf(&in, "GET %s\r\n", k)
				bulkOrNil(&want, model, k)
			case 3:
				fmt.Fprintf(&in, "DEL %s\r\n", k)
				presence(&want, model, k)
				delete(model, k)
			case 4:
				k2 := prefix + keyGen.Draw(rt, "key2")
				fmt.Fprintf(&in, "MGET %s %s\r\n", k, k2)
				want.WriteString("*2\r\n")
				bulkOrNil(&want, model, k)
				bulkOrNil(&want, model, k2)
			case 5:
				fmt.Fprintf(&in, "EXISTS %s\r\n", k)
				presence(&want, model, k)
			case 6:
				fmt.Fprintf(&in, "ECHO e%d\r\n", i)
				fmt.Fprintf(&want, "$%d\r\ne%d\r\n", len(fmt.Sprint(i))+1, i)
			case 7: // SCAN always runs on a goroutine
				fmt.Fprintf(&in, "SCAN 0 MATCH %s\r\n", k)
				want.WriteString("*2\r\n$1\r\n0\r\n")
				if _, ok := model[k]; ok {
					fmt.Fprintf(&want, "*1\r\n$%d\r\n%s\r\n", len(k), k)
				} else {
					want.WriteString("*0\r\n")
				}
			case 8:
				in.WriteString("PING\r\n")
				want.WriteString("+PONG\r\n")
			}
		}
		shutdown := rapid.Bool().Draw(rt, "shutdown")
		// How the input is cut and paced, drawn here: rt is not for other
		// goroutines.
		type piece struct {
			data  string
			pause bool
		}
		var pieces []piece
		for data := in.String(); len(data) > 0; {
			m := min(len(data), rapid.IntRange(1, 64).Draw(rt, "piece"))
			pieces = append(pieces, piece{data[:m], rapid.IntRange(0, 3).Draw(rt, "pause") == 0})
			data = data[m:]
		}

		nc, err := net.Dial("tcp", addr)
		if err != nil {
			rt.Fatal(err)
		}
		defer nc.Close()
		sent := make(chan error, 1)
		go func() {
			for _, p := range pieces {
				if _, err := io.WriteString(nc, p.data); err != nil {
					sent <- err
					return
				}
				if p.pause {
					time.Sleep(100 * time.Microsecond)
				}
			}
			if shutdown {
				sent <- nc.(*net.TCPConn).CloseWrite()
				return
			}
			sent <- nil
		}()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, want.Len())
		if _, err := io.ReadFull(nc, got); err != nil {
			rt.Fatalf("reading %d bytes of replies: %v; got %q for %q (shutdown %v)", want.Len(), err, got, in.String(), shutdown)
		}
		if err := <-sent; err != nil {
			rt.Fatalf("send: %v", err)
		}
		if string(got) != want.String() {
			rt.Fatalf("replies differ from the model:\n got %q\nwant %q\nto %q", got, want.String(), in.String())
		}
	})
}

// bulkOrNil writes the reply to a read of key in model: its value, or nil.
func bulkOrNil(w *strings.Builder, model map[string]string, key string) {
	if v, ok := model[key]; ok {
		fmt.Fprintf(w, "$%d\r\n%s\r\n", len(v), v)
	} else {
		w.WriteString("$-1\r\n")
	}
}

// presence writes the reply counting key in model: :1 or :0.
func presence(w *strings.Builder, model map[string]string, key string) {
	if _, ok := model[key]; ok {
		w.WriteString(":1\r\n")
	} else {
		w.WriteString(":0\r\n")
	}
}
