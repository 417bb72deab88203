package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
)

func TestParseRedisURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want asynq.RedisConnOpt
	}{
		{"redis://127.0.0.1:6379/2", asynq.RedisClientOpt{Addr: "127.0.0.1:6379", DB: 2}},
		{"redis-sentinel://:pw@s1:26379,s2:26379?master=mymaster",
			asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26379"}, SentinelPassword: "pw"}},
		{"redis-cluster://n1:7000,n2:7001,n3:7002", asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000", "n2:7001", "n3:7002"}}},
		{"redis-cluster://ops:s3cret@n1:7000,n2:7001/", asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000", "n2:7001"}, Username: "ops", Password: "s3cret"}},
	} {
		got, err := parseRedisURL(tc.in)
		if err != nil {
			t.Errorf("parseRedisURL(%q): %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("parseRedisURL(%q) (-want +got):\n%s", tc.in, d)
		}
	}
	for _, bad := range []string{"redis-cluster://", "redis-cluster://n1:7000/3", "redis-sentinel://s1:26379", "http://x", "redis://:hunter2@h:x/db"} {
		_, err := parseRedisURL(bad)
		if err == nil {
			t.Errorf("parseRedisURL(%q): no error", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseRedisURL(%q): the error shows the password: %v", bad, err)
		}
	}
}
