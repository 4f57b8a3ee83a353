package results

import (
	"fmt"
	"sort"
	"strings"
)

// A Section is one capability's part of the reports (DNS failover, db
// checkers, scaling, ...): a title, a note and a table, rendered alike in
// report.md and report.html. Capabilities register a builder from their own
// file, so the report writers never learn about any of them.
type Section struct {
	Title string
	Note  string
	// Header names the columns; a name starting with "#" is a number
	// column (right-aligned), the "#" itself not shown.
	Header []string
	Rows   []Row
}

// Row is one table row; Bad highlights it as a failure.
type Row struct {
	Cells []string
	Bad   bool
}

type sectionBuilder struct {
	order int
	name  string
	build func(*Summary) []Section
}

var sectionBuilders []sectionBuilder

// registerSection adds a builder; lower order comes first in the reports.
// A builder returns nothing for a run without its capability.
func registerSection(order int, name string, build func(*Summary) []Section) {
	sectionBuilders = append(sectionBuilders, sectionBuilder{order: order, name: name, build: build})
	sort.SliceStable(sectionBuilders, func(i, j int) bool { return sectionBuilders[i].order < sectionBuilders[j].order })
}

// sections builds every registered section for s.
func sections(s *Summary) []Section {
	var out []Section
	for _, b := range sectionBuilders {
		out = append(out, b.build(s)...)
	}
	return out
}

// Names and Numeric are the header split for the HTML template.
func (c Section) Names() []string { n, _ := c.columns(); return n }
func (c Section) Numeric() []bool { _, n := c.columns(); return n }

func (c Section) columns() (names []string, numeric []bool) {
	for _, h := range c.Header {
		n, isNum := strings.CutPrefix(h, "#")
		names = append(names, n)
		numeric = append(numeric, isNum)
	}
	return names, numeric
}

// markdown renders the section as a report.md part.
func (c Section) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s\n\n", c.Title)
	if c.Note != "" {
		fmt.Fprintf(&b, "%s\n\n", c.Note)
	}
	if len(c.Header) == 0 {
		return b.String()
	}
	names, numeric := c.columns()
	b.WriteString("| " + strings.Join(names, " | ") + " |\n|")
	for _, n := range numeric {
		if n {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, r := range c.Rows {
		cells := make([]string, len(r.Cells))
		for i, cell := range r.Cells {
			cells[i] = strings.ReplaceAll(cell, "|", `\|`)
		}
		if r.Bad && len(cells) > 0 {
			cells[0] = "**" + cells[0] + "** ✗"
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}
