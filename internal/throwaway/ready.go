package throwaway

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// waitPostgresReady reports whether PostgreSQL at addr answers a query
// within a second.
func waitPostgresReady(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres@"+addr+"/postgres?sslmode=disable&connect_timeout=1")
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx) == nil
}
