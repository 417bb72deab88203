package throwaway

import (
	"context"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartPostgresAndRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	ctx := context.Background()
	pg, err := StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	conn.Close(ctx)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", pg.Addr); err == nil {
		c.Close()
		t.Fatalf("postgres still listening on %s after Stop", pg.Addr)
	}

	rd, err := StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", rd.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); got != "+PONG\r\n" {
		t.Fatalf("PING answered %q, want +PONG", got)
	}
	c.Close()
	if err := rd.Stop(); err != nil {
		t.Fatal(err)
	}
}
