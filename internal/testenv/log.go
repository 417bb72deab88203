package testenv

import (
	"log/slog"
	"strings"
	"testing"
)

// Logger returns a logger that writes to the test's log at debug level,
// so that a failing test shows what the code under test said. Whatever
// logs through it must stop before the test ends (a cleanup may still
// log).
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
