package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// This example writes a key at the root and reads it back from a replica,
// which answers from a state that includes the write.
func Example() {
	ctx := context.Background()
	root, err := client.New("127.0.0.1:7400")
	if err != nil {
		log.Fatal(err)
	}
	replica, err := client.New("127.0.0.1:7401")
	if err != nil {
		log.Fatal(err)
	}
	idx, err := root.Put(ctx, []byte("config/greeting"), []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	v, err := replica.Get(ctx, []byte("config/greeting"), client.ReadOptions{MinIndex: idx})
	switch {
	case errors.Is(err, argent.ErrNotFound):
		fmt.Printf("absent at index %d\n", v.Index)
	case errors.Is(err, argent.ErrTimeout):
		fmt.Println("the replica is too far behind")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Printf("%s (written at %d, read at %d from %s)\n", v.Value, v.ModIndex, v.Index, v.Tier)
	}
}

// This example follows every change under a prefix, resuming after a
// dropped stream.
func ExampleClient_Watch() {
	ctx := context.Background()
	c, err := client.New("127.0.0.1:7400")
	if err != nil {
		log.Fatal(err)
	}
	next := argent.Index(1)
	for ctx.Err() == nil {
		w, err := c.Watch(ctx, []byte("config/"), next)
		if err != nil {
			log.Fatal(err) // errors.Is(err, argent.ErrCompacted): reload with Scan
		}
		for {
			ev, err := w.Next()
			if err != nil {
				break // resume from next
			}
			next = ev.Index + 1
			for _, op := range ev.Ops {
				fmt.Println(ev.Index, op.Type, string(op.Key))
			}
		}
		w.Close()
	}
}

// This example writes through the root and reads through nearby replicas
// (with failover between them) in one session: every read is at least as
// new as the session's last write or read, without passing indexes around.
func ExampleClient_Session() {
	ctx := context.Background()
	root, err := client.New("127.0.0.1:7400")
	if err != nil {
		log.Fatal(err)
	}
	replicas, err := client.New("127.0.0.1:7401,127.0.0.1:7410")
	if err != nil {
		log.Fatal(err)
	}
	s := root.Session()
	idx, err := s.Put(ctx, []byte("config/greeting"), []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	v, err := s.On(replicas).Get(ctx, []byte("config/greeting"), client.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, written at %d, read at %d\n", v.Value, idx, v.Index)
}
