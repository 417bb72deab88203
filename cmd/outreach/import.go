package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/outreach-dev/outreach/csvimport"
)

// badRowsError is the import's error when some rows were skipped: the good
// rows are in, and the command exits with exitPartial.
type badRowsError struct{ bad, rows int64 }

func (e badRowsError) Error() string {
	return fmt.Sprintf("%d of %d rows were bad and skipped (listed above); the good rows were imported", e.bad, e.rows)
}

func (e badRowsError) ExitCode() int { return exitPartial }

func runImport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "import", `import FILE.csv --campaign NAME|ID [flags]

Adds targets to a campaign from a CSV file with a header row ("-" reads
standard input). One column holds the identifier (a LinkedIn URL or slug, a
Partoo user id, an Altegio email or phone); every other column becomes a
template variable ({{.Vars.company}}). The file is streamed into Postgres
with COPY, so millions of rows work. Identifiers the campaign already has
are left alone.

Bad rows (wrong number of fields, empty identifier, an identifier over
2,048 bytes, invalid UTF-8, broken quoting) are reported with their line numbers and skipped; the good rows
are imported. Exit status: 0 all rows good, 4 some rows bad (the rest
imported), 3 no such campaign, 2 usage or a bad header, 1 other errors.`)
	campaign := fs.String("campaign", "", "the campaign's name or id (required)")
	idCol := fs.String("identifier-column", "identifier", "the column that holds the identifier")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	maxShown := fs.Int("show-bad", 50, "list at most this many bad rows")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one CSV file (or - for standard input)")
	}
	if *campaign == "" {
		return usagef("--campaign is required")
	}
	var in io.Reader = os.Stdin
	var size int64
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		in = f
	}
	st, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := campaignByRef(ctx, st, *campaign)
	if err != nil {
		return err
	}
	p := newProgress(env.Stderr, *quiet)
	start := time.Now()
	res, err := csvimport.Import(ctx, st, in, csvimport.Options{
		CampaignID:       c.ID,
		IdentifierColumn: *idCol,
		ProgressEvery:    5000,
		MaxBadRows:       max(*maxShown, 1),
		Progress: func(pr csvimport.Progress) {
			line := fmt.Sprintf("importing %s: %d rows read, %d bad", pos[0], pr.Rows, pr.Bad)
			if size > 0 {
				line = bar(float64(pr.Bytes)/float64(size), 20) + " " + line
			}
			switch pr.Phase {
			case "inserting":
				p.force(line + "; adding them to the campaign…")
			case "done":
			default:
				p.update(line)
			}
		},
	})
	p.done()
	if err != nil {
		if errors.Is(err, csvimport.ErrHeader) {
			return usagef("%v", err)
		}
		return err
	}
	for _, b := range res.BadRows {
		fmt.Fprintf(env.Stderr, "%s:%d: %s\n", pos[0], b.Line, b.Reason)
	}
	if res.Bad > int64(len(res.BadRows)) {
		fmt.Fprintf(env.Stderr, "… and %d more bad rows\n", res.Bad-int64(len(res.BadRows)))
	}
	fmt.Fprintf(env.Stdout, "campaign %q: %d rows read, %d targets added, %d already there, %d bad rows skipped (%.1fs)\n",
		c.Name, res.Rows, res.Inserted, res.Duplicates, res.Bad, time.Since(start).Seconds())
	if res.Bad > 0 {
		return badRowsError{bad: res.Bad, rows: res.Rows}
	}
	return nil
}
