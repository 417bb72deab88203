package metrics

import (
	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// NewQueueCollector returns asynq's queue collector (asynq_queue_size,
// asynq_tasks_enqueued_total by state, asynq_queue_latency_seconds,
// asynq_tasks_processed_total, asynq_tasks_failed_total, ...) reading from
// rdb at scrape time. It shares rdb and does not close it.
func NewQueueCollector(rdb redis.UniversalClient) prometheus.Collector {
	return asynqmetrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(rdb))
}
