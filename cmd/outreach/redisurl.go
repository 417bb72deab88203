package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/hibiken/asynq"
)

// parseRedisURL turns REDIS_URL into asynq's connection options:
//
//	redis://[:password@]host:port[/db]         one server
//	rediss://…                                 the same over TLS
//	redis-socket://[:password@]/path?db=N      a Unix socket
//	redis-sentinel://[:password@]host1:port,host2:port?master=NAME
//	                                           a Sentinel-managed primary; the
//	                                           password is the sentinels'
//	redis-cluster://[user:password@]host1:port,host2:port
//	                                           a Redis Cluster, from seed nodes
//
// The first four are asynq.ParseRedisURI's; redis-cluster is outreach's.
func parseRedisURL(s string) (asynq.RedisConnOpt, error) {
	if rest, ok := strings.CutPrefix(s, "redis-cluster://"); ok {
		u, err := url.Parse("redis://" + rest)
		if err != nil {
			return nil, fmt.Errorf("does not parse")
		}
		if u.Host == "" {
			return nil, fmt.Errorf("redis-cluster:// wants seed nodes: redis-cluster://host1:6379,host2:6379")
		}
		if u.Path != "" && u.Path != "/" && u.Path != "/0" {
			return nil, fmt.Errorf("a Redis Cluster has only database 0")
		}
		opt := asynq.RedisClusterClientOpt{Addrs: strings.Split(u.Host, ",")}
		if u.User != nil {
			opt.Username = u.User.Username()
			opt.Password, _ = u.User.Password()
		}
		return opt, nil
	}
	opt, err := asynq.ParseRedisURI(s)
	if err != nil {
		// asynq's message may quote the URL, password included.
		return nil, fmt.Errorf("does not parse")
	}
	if so, ok := opt.(asynq.RedisFailoverClientOpt); ok && so.MasterName == "" {
		return nil, fmt.Errorf("redis-sentinel:// wants the primary's name: redis-sentinel://host1:26379,host2:26379?master=mymaster")
	}
	return opt, nil
}
