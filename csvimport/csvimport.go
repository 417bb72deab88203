// Package csvimport streams targets from CSV into a campaign: it checks
// the rows and hands them to the store (Store.ImportTargets), which copies
// them into a temporary table, then into targets with INSERT …
// ON CONFLICT DO NOTHING, so a file of millions of rows imports in one
// pass with constant memory, and identifiers the campaign already has are
// left alone. Bad rows are reported with their line numbers and skipped;
// the good ones are kept.
package csvimport

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/outreach-dev/outreach/store"
)

// Options configures an import.
type Options struct {
	// CampaignID is the campaign the targets join. Required.
	CampaignID int64
	// IdentifierColumn names the column holding the identifier (a LinkedIn
	// URL or slug, a Partoo user id, an email or phone); default
	// "identifier". Every other column becomes a template variable in the
	// target's vars.
	IdentifierColumn string
	// Progress, if set, is called every ProgressEvery rows and at the end.
	Progress func(Progress)
	// ProgressEvery defaults to 10,000 rows.
	ProgressEvery int
	// MaxBadRows is how many bad rows are kept in Result.BadRows (all are
	// counted); default 1,000.
	MaxBadRows int
}

// Progress is how far an import got.
type Progress struct {
	// Phase is "reading" while rows stream in, then "inserting" while
	// they move into targets, then "done".
	Phase     string
	Rows, Bad int64
	// Bytes is how much of the input was read.
	Bytes int64
}

// BadRow is a row that was skipped.
type BadRow struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// Result is what an import did.
type Result struct {
	// Rows counts data rows read (header excluded); Good the valid ones.
	Rows, Good int64
	// Inserted counts new targets; Duplicates the good rows whose
	// identifier the campaign had already (or that repeat one in the file).
	Inserted, Duplicates int64
	// Bad counts skipped rows; BadRows lists the first MaxBadRows of them.
	Bad     int64
	BadRows []BadRow
}

// MaxIdentifierBytes is the longest identifier a target takes, in bytes
// after trimming spaces: the schema's bound (migration 00002), well under
// what a Postgres index can hold (about 2.7 KB). A longer one is a bad row.
const MaxIdentifierBytes = 2048

// ErrHeader means the file has no usable header row: empty, no identifier
// column, or a repeated or empty column name.
var ErrHeader = errors.New("bad header")

// Import reads CSV from r (a header row, then one target per row) into the
// campaign. It fails as a whole only on a bad header (ErrHeader), a
// campaign that does not exist (store.ErrNotFound) or a database error;
// bad rows are skipped and reported in the Result.
func Import(ctx context.Context, st *store.Store, r io.Reader, o Options) (*Result, error) {
	if o.IdentifierColumn == "" {
		o.IdentifierColumn = "identifier"
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 10000
	}
	if o.MaxBadRows <= 0 {
		o.MaxBadRows = 1000
	}
	cr := &countingReader{r: r}
	src, err := newSource(cr, o)
	if err != nil {
		return nil, err
	}
	res := &src.res
	res.Inserted, err = st.ImportTargets(ctx, o.CampaignID, src, func() {
		if o.Progress != nil {
			o.Progress(Progress{Phase: "inserting", Rows: res.Rows, Bad: res.Bad, Bytes: cr.n})
		}
	})
	if err != nil {
		return nil, err
	}
	res.Duplicates = res.Good - res.Inserted
	if o.Progress != nil {
		o.Progress(Progress{Phase: "done", Rows: res.Rows, Bad: res.Bad, Bytes: cr.n})
	}
	return res, nil
}

// source is a pgx.CopyFromSource reading CSV rows, skipping bad ones.
type source struct {
	cr     *countingReader
	r      *csv.Reader
	o      Options
	idCol  int
	header []string
	vars   map[string]string
	row    []any
	res    Result
	err    error // a read error that ends the import
}

func newSource(cr *countingReader, o Options) (*source, error) {
	r := csv.NewReader(cr)
	r.ReuseRecord = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file is empty", ErrHeader)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	header = append([]string(nil), header...)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // a BOM from spreadsheet exports
	}
	s := &source{cr: cr, r: r, o: o, idCol: -1, header: header, vars: map[string]string{}}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case h == "":
			return nil, fmt.Errorf("%w: column %d has no name", ErrHeader, i+1)
		case !utf8.ValidString(h):
			return nil, fmt.Errorf("%w: column %d's name is not valid UTF-8", ErrHeader, i+1)
		case seen[h]:
			return nil, fmt.Errorf("%w: column %q appears twice", ErrHeader, h)
		}
		seen[h] = true
		if h == o.IdentifierColumn {
			s.idCol = i
		}
	}
	if s.idCol < 0 {
		return nil, fmt.Errorf("%w: no column %q (columns: %s); name it with --identifier-column",
			ErrHeader, o.IdentifierColumn, strings.Join(header, ", "))
	}
	r.FieldsPerRecord = len(header)
	return s, nil
}

func (s *source) bad(line int, reason string) {
	s.res.Bad++
	if len(s.res.BadRows) < s.o.MaxBadRows {
		s.res.BadRows = append(s.res.BadRows, BadRow{Line: line, Reason: reason})
	}
}

// Next reads rows until a good one, skipping and recording bad ones.
func (s *source) Next() bool {
	for {
		rec, err := s.r.Read()
		if errors.Is(err, io.EOF) {
			return false
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			s.err = fmt.Errorf("read CSV: %w", err)
			return false
		}
		s.res.Rows++
		if s.o.Progress != nil && s.res.Rows%int64(s.o.ProgressEvery) == 0 {
			s.o.Progress(Progress{Phase: "reading", Rows: s.res.Rows, Bad: s.res.Bad, Bytes: s.cr.n})
		}
		if pe != nil {
			line := pe.StartLine
			if line == 0 {
				line = pe.Line
			}
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				s.bad(line, fmt.Sprintf("%d fields, want %d", len(rec), len(s.header)))
			} else {
				s.bad(line, pe.Err.Error())
			}
			continue
		}
		line, _ := s.r.FieldPos(0)
		if reason := s.check(rec); reason != "" {
			s.bad(line, reason)
			continue
		}
		clear(s.vars)
		for i, v := range rec {
			if i != s.idCol {
				s.vars[s.header[i]] = v
			}
		}
		vars, err := json.Marshal(s.vars)
		if err != nil {
			s.bad(line, "vars: "+err.Error())
			continue
		}
		s.res.Good++
		s.row = []any{line, strings.TrimSpace(rec[s.idCol]), string(vars)}
		return true
	}
}

// check returns why a row is bad, or "".
func (s *source) check(rec []string) string {
	for i, v := range rec {
		if !utf8.ValidString(v) {
			return fmt.Sprintf("column %q is not valid UTF-8", s.header[i])
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Sprintf("column %q holds a NUL byte", s.header[i])
		}
	}
	id := strings.TrimSpace(rec[s.idCol])
	if id == "" {
		return fmt.Sprintf("empty %s", s.header[s.idCol])
	}
	if len(id) > MaxIdentifierBytes {
		return fmt.Sprintf("%s is %d bytes, longer than the maximum of %d", s.header[s.idCol], len(id), MaxIdentifierBytes)
	}
	return ""
}

func (s *source) Values() ([]any, error) { return s.row, nil }

func (s *source) Err() error { return s.err }

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
