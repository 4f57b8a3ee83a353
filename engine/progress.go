package engine

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// console writes a run's log lines and its progress. On a terminal the
// progress is a block redrawn in place under the log lines; elsewhere (CI
// logs) it is one compact line every few seconds, so a log stays readable.
type console struct {
	mu    sync.Mutex
	w     io.Writer
	live  bool
	drawn int // lines of the live block now on screen
	block []string
}

func (c *console) logf(format string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.erase()
	fmt.Fprintf(c.w, format+"\n", a...)
	c.draw()
}

// status replaces the progress: redrawn in place when live, else printed
// as one line.
func (c *console) status(lines []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		fmt.Fprintln(c.w, strings.Join(lines, " | "))
		return
	}
	c.erase()
	c.block = lines
	c.draw()
}

// done removes the live block, leaving only the log.
func (c *console) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.erase()
	c.block = nil
}

func (c *console) erase() {
	for ; c.drawn > 0; c.drawn-- {
		fmt.Fprint(c.w, "\x1b[1A\x1b[2K") // up one line, clear it
	}
}

func (c *console) draw() {
	for _, l := range c.block {
		fmt.Fprintln(c.w, l)
	}
	c.drawn = len(c.block)
}

// activeFaults tracks what is injected right now, for the progress view.
type activeFaults struct {
	mu    sync.Mutex
	since map[string]float64
}

func (a *activeFaults) set(label string, t float64, active bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.since == nil {
		a.since = map[string]float64{}
	}
	if active {
		a.since[label] = t
	} else {
		delete(a.since, label)
	}
}

func (a *activeFaults) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.since))
	for l, t := range a.since {
		out = append(out, fmt.Sprintf("%s (since %.0fs)", l, t))
	}
	sort.Strings(out)
	return out
}

// progressLoop reports, until ctx ends: the phase, elapsed and remaining
// time, each region's rate, p99 and errors over its last complete second,
// and the faults active now.
func (r *run) progressLoop(ctx context.Context) {
	every := r.e.progress
	if r.con.live {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	defer r.con.done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.con.status(r.progressLines())
	}
}

func (r *run) progressLines() []string {
	elapsed := time.Since(r.start).Round(100 * time.Millisecond)
	left := max(r.sc.Duration-elapsed, 0)
	lines := []string{fmt.Sprintf("%s: load phase, t=%5.1fs of %s (%s left)", r.sc.Name, elapsed.Seconds(), r.sc.Duration, left.Round(time.Second))}
	regions := r.rec.Regions()
	for _, name := range r.dep.Regions() {
		reg := regions[name]
		// The newest second is still filling; report the one before.
		if n := len(reg.Series); n >= 2 {
			pt := reg.Series[n-2]
			lines = append(lines, fmt.Sprintf("%-9s %4.0f rps  p99 %5.0f ms  errors %d", name, pt.RPS, pt.P99, pt.Errors))
		} else {
			lines = append(lines, fmt.Sprintf("%-9s -", name))
		}
	}
	faults := r.active.list()
	if len(faults) == 0 {
		lines = append(lines, "faults: none active")
	} else {
		lines = append(lines, "faults: "+strings.Join(faults, ", "))
	}
	return lines
}
