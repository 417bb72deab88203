package bench

import (
	"context"
	"fmt"
	"strings"

	"github.com/outreach-dev/outreach/store/benchdb"
)

// TargetCost is what one target cost Postgres in a run: the server's
// counters over the pipeline's run (scheduler and worker alike, from
// pending to recorded) divided by the targets (the throughput run) or the
// invitations sent (the accuracy and pool runs).
type TargetCost struct {
	// Statements is round trips (every statement, BEGIN and COMMIT
	// included; pg_stat_statements) per target, ExecMS their execution and
	// planning time; zero without pg_stat_statements.
	Statements, ExecMS float64
	Commits            float64
	WALBytes, WALRecs  float64
	Inserts, Updates   float64
	HotUpdates         float64
	Deletes            float64
	// CPUMS is the Postgres server's CPU time per target (/proc), zero
	// when it could not be read.
	CPUMS float64
	// Top is the statements with the most time, for the report.
	Top []benchdb.StatementCost
}

// costMeter takes the server's counters at the start of a run.
type costMeter struct {
	db         *benchdb.DB
	statements bool
	start      benchdb.CostSnapshot
}

func startCost(ctx context.Context, db *benchdb.DB) (*costMeter, error) {
	ok, err := db.EnableStatements(ctx)
	if err != nil {
		return nil, fmt.Errorf("pg_stat_statements: %w", err)
	}
	m := &costMeter{db: db, statements: ok}
	m.start, err = db.Cost(ctx, ok)
	return m, err
}

// per reads the counters again and divides what changed by n targets.
func (m *costMeter) per(ctx context.Context, n int) (*TargetCost, error) {
	end, err := m.db.Cost(ctx, m.statements)
	if err != nil {
		return nil, err
	}
	s, f := m.start, float64(n)
	c := &TargetCost{
		Statements: float64(end.Statements-s.Statements) / f,
		ExecMS:     (end.ExecMS - s.ExecMS) / f,
		Commits:    float64(end.Commits-s.Commits) / f,
		WALBytes:   float64(end.WALBytes-s.WALBytes) / f,
		WALRecs:    float64(end.WALRecords-s.WALRecords) / f,
		Inserts:    float64(end.Inserts-s.Inserts) / f,
		Updates:    float64(end.Updates-s.Updates) / f,
		HotUpdates: float64(end.HotUpdates-s.HotUpdates) / f,
		Deletes:    float64(end.Deletes-s.Deletes) / f,
	}
	if s.CPUTicks > 0 && end.CPUTicks >= s.CPUTicks {
		c.CPUMS = float64(end.CPUTicks-s.CPUTicks) * 10 / f // USER_HZ is 100 on Linux
	}
	if m.statements {
		if c.Top, err = m.db.TopStatements(ctx, 8); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// String is the cost as one table cell.
func (c *TargetCost) String() string {
	s := fmt.Sprintf("%.2f statements (round trips), %.2f commits, %.0f B / %.1f records of WAL, %.2f inserts + %.2f updates (%.2f HOT) + %.2f deletes",
		c.Statements, c.Commits, c.WALBytes, c.WALRecs, c.Inserts, c.Updates, c.HotUpdates, c.Deletes)
	if c.ExecMS > 0 {
		s += fmt.Sprintf(", %.3f ms statement time", c.ExecMS)
	}
	if c.CPUMS > 0 {
		s += fmt.Sprintf(", %.3f ms Postgres CPU", c.CPUMS)
	}
	return s
}

// topTable is the statements with the most time, per target, as lines.
func (c *TargetCost) topTable(targets int) string {
	var b strings.Builder
	for _, s := range c.Top {
		q := strings.Join(strings.Fields(s.Query), " ")
		if len(q) > 90 {
			q = q[:90] + "…"
		}
		fmt.Fprintf(&b, "  %6.3f calls/target %7.4f ms/target  %s\n", float64(s.Calls)/float64(targets), s.ExecMS/float64(targets), q)
	}
	return b.String()
}
