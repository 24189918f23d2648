package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// redisStore reads at a Redis replica and writes at its primary through
// github.com/redis/go-redis/v9, one client with one connection per worker
// and role, so that 50 workers hold 50 connections as with the others.
type redisStore struct {
	read  []*redis.Client // at the replica
	write []*redis.Client // at the primary
}

// newRedisClient returns a client of one connection to addr, speaking
// RESP2 without the handshake extras (CLIENT SETINFO, maintenance
// notifications) that Redis 7.0 does not know.
func newRedisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                     addr,
		Protocol:                 2,
		PoolSize:                 1,
		MinIdleConns:             0,
		DisableIdentity:          true,
		DialTimeout:              5 * time.Second,
		ReadTimeout:              10 * time.Second,
		WriteTimeout:             10 * time.Second,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

func newRedisClients(addr string, n int) []*redis.Client {
	out := make([]*redis.Client, n)
	for i := range out {
		out[i] = newRedisClient(addr)
	}
	return out
}

func closeRedisClients(clis []*redis.Client) {
	for _, c := range clis {
		_ = c.Close()
	}
}

func (s *redisStore) get(ctx context.Context, c int, key []byte) error {
	err := s.read[c].Get(ctx, string(key)).Err()
	if errors.Is(err, redis.Nil) {
		return errMiss
	}
	return err
}

func (s *redisStore) put(ctx context.Context, c int, key, value []byte) error {
	return s.write[c].Set(ctx, string(key), value, 0).Err()
}

func (s *redisStore) mget(ctx context.Context, c int, keys [][]byte) error {
	args := make([]string, len(keys))
	for i, k := range keys {
		args[i] = string(k)
	}
	vals, err := s.read[c].MGet(ctx, args...).Result()
	if err != nil {
		return err
	}
	if len(vals) != len(keys) {
		return fmt.Errorf("redis: mget of %d keys answered %d", len(keys), len(vals))
	}
	return nil
}

func (s *redisStore) setDeadline(int, time.Time) {}

// loadRedis writes keys [0, n) at the primary in pipelines of 1,000 SETs,
// 4 at once, then waits until the replica (if any) holds as many keys.
func loadRedis(ctx context.Context, primary, replica *redis.Client, n int, name func(int) string, value func(int) []byte) error {
	err := inBatches(ctx, n, 1000, 4, func(ctx context.Context, from, to int) error {
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		p := primary.Pipeline()
		for id := from; id < to; id++ {
			p.Set(tctx, name(id), value(id), 0)
		}
		if _, err := p.Exec(tctx); err != nil {
			return fmt.Errorf("redis: sets of keys %d..%d: %w", from, to-1, err)
		}
		return nil
	})
	if err != nil || replica == nil {
		return err
	}
	return waitRedisSynced(ctx, primary, replica, 2*time.Minute)
}

// waitRedisSynced waits until the replica's replication offset reaches
// the primary's: the replica has applied every write so far.
func waitRedisSynced(ctx context.Context, primary, replica *redis.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		want, err1 := infoField(ctx, primary, "replication", "master_repl_offset")
		got, err2 := infoField(ctx, replica, "replication", "slave_repl_offset")
		link, err3 := infoField(ctx, replica, "replication", "master_link_status")
		if err := errors.Join(err1, err2, err3); err == nil && link == "up" && got != "" && got == want {
			return nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("redis: replica not in sync after %v (primary offset %s, replica %s, link %q, %v)", timeout, want, got, link, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// infoField returns one field of INFO section, "" if it is absent.
func infoField(ctx context.Context, c *redis.Client, section, field string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		return "", fmt.Errorf("redis: info %s: %w", section, err)
	}
	return parseInfoField(info, field), nil
}

// parseInfoField returns the value of field in INFO output
// ("field:value" lines), "" if it is absent.
func parseInfoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && k == field {
			return v
		}
	}
	return ""
}

// redisPort returns the port of a host:port address as a string for
// redis-benchmark's -p.
func redisPort(addr string) (string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", fmt.Errorf("redis: address %q has no port", addr)
	}
	if _, err := strconv.Atoi(addr[i+1:]); err != nil {
		return "", fmt.Errorf("redis: address %q: %w", addr, err)
	}
	return addr[i+1:], nil
}
