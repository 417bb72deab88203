package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress shows a status line on stderr: rewritten in place on a
// terminal, else printed at most every few seconds.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	mu    sync.Mutex
	last  time.Time
	width int
	shown bool
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok {
		p.tty = isTerminal(f)
	}
	return p
}

func (p *progress) update(line string) { p.show(line, false) }

// force shows line even if the last one was shown a moment ago.
func (p *progress) force(line string) { p.show(line, true) }

func (p *progress) show(line string, force bool) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.tty {
		if !force && now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		pad := max(p.width-len([]rune(line)), 0)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.width = len([]rune(line))
	} else {
		if !force && !p.last.IsZero() && now.Sub(p.last) < 2*time.Second {
			return
		}
		fmt.Fprintln(p.w, line)
	}
	p.last = now
	p.shown = true
}

// done ends the line on a terminal.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprintln(p.w)
	}
	p.shown = false
}

// bar draws a progress bar of width cells for a fraction from 0 to 1.
func bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	full := int(frac*float64(width) + 0.5)
	return fmt.Sprintf("[%s%s] %3d%%", strings.Repeat("█", full), strings.Repeat("░", width-full), int(frac*100))
}
