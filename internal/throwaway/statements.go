package throwaway

import (
	"os"
	"path/filepath"
)

// statementsArgs preloads pg_stat_statements when the server's library
// directory has it (Debian: /usr/lib/postgresql/N/lib beside bin/), so
// that the benchmarks can count statements and their time per target.
func statementsArgs(postgres string) []string {
	if real, err := filepath.EvalSymlinks(postgres); err == nil {
		postgres = real
	}
	lib := filepath.Join(filepath.Dir(filepath.Dir(postgres)), "lib", "pg_stat_statements.so")
	if _, err := os.Stat(lib); err != nil {
		return nil
	}
	return []string{"-c", "shared_preload_libraries=pg_stat_statements", "-c", "pg_stat_statements.track_utility=on"}
}
