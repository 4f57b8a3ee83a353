package results

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Plot geometry in CSS pixels. frameColor outlines every plot area and is
// used nowhere else, so a screenshot test can find the plots by it.
const (
	plotWidth   = 960
	marginLeft  = 60
	marginRight = 20
	marginTop   = 34
	marginBot   = 34
	frameColor  = "#8a9bb0"
	bandFill    = "#dc2626"
	markerColor = "#7c3aed"
)

// regionPalette gives regions distinct colours that stay apart for the
// common colour-vision deficiencies and on a light background.
var regionPalette = []string{"#2563eb", "#ea580c", "#059669", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563"}

// chart is one SVG plot over the run's time axis.
type chart struct {
	title   string
	height  int
	xMax    float64
	log     bool // logarithmic y axis (latency spans decades during a fault)
	yMin    float64
	lines   []line
	hlines  []hline
	bands   []band
	markers []Marker
}

type line struct {
	name, color, dash string
	width, opacity    float64
	// ys[i] is the value at second xs[i]; NaN breaks the line.
	xs, ys []float64
}

type hline struct {
	y            float64
	label, color string
}

// band is a shaded time window: a fault, or (strong) the part of it in
// which users were affected.
type band struct {
	from, to float64
	label    string
	strong   bool
}

func (c chart) render() template.HTML {
	w, h := float64(plotWidth), float64(c.height)
	pw, ph := w-marginLeft-marginRight, h-marginTop-marginBot
	lo, hi := c.yRange()
	x := func(v float64) float64 { return marginLeft + v/c.xMax*pw }
	y := func(v float64) float64 {
		f := (v - lo) / (hi - lo)
		if c.log {
			f = (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		}
		return marginTop + ph - math.Max(0, math.Min(1, f))*ph
	}
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<svg class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`, w, h, w, h, esc(c.title))
	p(`<text x="%d" y="16" class="title">%s</text>`, marginLeft, esc(c.title))
	p(`<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="#f8fafc"/>`, marginLeft, marginTop, pw, ph)
	for _, t := range c.yTicks(lo, hi) {
		p(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, marginLeft, w-marginRight, y(t), y(t))
		p(`<text x="%d" y="%.1f" class="ytick">%s</text>`, marginLeft-6, y(t)+4, tickLabel(t))
	}
	for _, t := range niceTicks(0, c.xMax, 12) {
		p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" class="grid"/>`, x(t), x(t), marginTop, marginTop+ph)
		p(`<text x="%.1f" y="%.1f" class="xtick">%s</text>`, x(t), marginTop+ph+14, tickLabel(t))
	}
	p(`<text x="%.1f" y="%.1f" class="xtick">seconds since start</text>`, marginLeft+pw/2, h-4)
	row := 0
	for _, bd := range c.bands {
		x0, x1 := x(math.Max(0, bd.from)), x(math.Min(c.xMax, bd.to))
		if bd.strong {
			p(`<rect x="%.1f" y="%.1f" width="%.1f" height="6" fill="%s" fill-opacity="0.55"><title>%s</title></rect>`,
				x0, marginTop+ph-6, math.Max(1, x1-x0), bandFill, esc(bd.label))
			continue
		}
		p(`<rect x="%.1f" y="%d" width="%.1f" height="%.0f" fill="%s" fill-opacity="0.12"><title>%s</title></rect>`,
			x0, marginTop, math.Max(1, x1-x0), ph, bandFill, esc(bd.label))
		// Alternate label rows so overlapping faults stay readable.
		p(`<text x="%.1f" y="%d" class="band">%s</text>`, x0+3, marginTop+12+12*(row%2), esc(bd.label))
		row++
	}
	for _, hl := range c.hlines {
		if hl.y < lo || hl.y > hi {
			continue
		}
		p(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6 4" stroke-width="1"/>`, marginLeft, w-marginRight, y(hl.y), y(hl.y), hl.color)
		p(`<text x="%.1f" y="%.1f" class="hline" fill="%s">%s</text>`, w-marginRight-4, y(hl.y)-4, hl.color, esc(hl.label))
	}
	for _, ln := range c.lines {
		var d strings.Builder
		pen := false
		for i, v := range ln.ys {
			if math.IsNaN(v) || (c.log && v <= 0) {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, x(ln.xs[i]), y(v))
			pen = true
		}
		if d.Len() == 0 {
			continue
		}
		p(`<path d="%s" fill="none" stroke="%s" stroke-width="%.1f" stroke-opacity="%.2f" stroke-linejoin="round"`, strings.TrimSpace(d.String()), ln.color, ln.width, ln.opacity)
		if ln.dash != "" {
			p(` stroke-dasharray="%s"`, ln.dash)
		}
		p(`><title>%s</title></path>`, esc(ln.name))
	}
	for _, m := range c.markers {
		p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="2 3"><title>%s</title></line>`,
			x(m.T), x(m.T), marginTop, marginTop+ph, markerColor, esc(m.Kind+": "+m.Label))
		p(`<text x="%.1f" y="%d" class="marker">%s</text>`, x(m.T)+3, marginTop-4, esc(m.Label))
	}
	p(`<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="%s" shape-rendering="crispEdges"/>`, marginLeft, marginTop, pw, ph, frameColor)
	p(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text above went through esc
}

// yRange is the y axis span: from yMin (or the smallest positive value on a
// log axis) to a round number above the largest value.
func (c chart) yRange() (lo, hi float64) {
	top, least := 0.0, math.Inf(1)
	for _, ln := range c.lines {
		for _, v := range ln.ys {
			if math.IsNaN(v) {
				continue
			}
			top = math.Max(top, v)
			if v > 0 {
				least = math.Min(least, v)
			}
		}
	}
	for _, hl := range c.hlines {
		top = math.Max(top, hl.y)
	}
	if !c.log {
		if top <= c.yMin {
			top = c.yMin + 1
		}
		top *= 1.08 // headroom: a flat line at the maximum must not hide in the frame
		ticks := niceTicks(c.yMin, top, 5)
		return c.yMin, math.Max(top, ticks[len(ticks)-1])
	}
	if math.IsInf(least, 1) {
		return 1, 10
	}
	// Latency is recorded from 1 µs to 60 s; clamping keeps the decade loop
	// of yTicks finite whatever a summary holds.
	least, top = math.Max(least, 0.001), math.Min(math.Max(top, least), 1e6)
	lo = math.Pow(10, math.Floor(math.Log10(least)))
	hi = math.Pow(10, math.Ceil(math.Log10(top)))
	if hi <= lo {
		hi = lo * 10
	}
	return lo, hi
}

func (c chart) yTicks(lo, hi float64) []float64 {
	if !c.log {
		return niceTicks(lo, hi, 5)
	}
	decades := math.Log10(hi) - math.Log10(lo)
	var out []float64
	for d := lo; d <= hi*1.0001; d *= 10 {
		out = append(out, d)
		if decades <= 3 && d*10 <= hi*1.0001 {
			out = append(out, 2*d, 5*d)
		}
	}
	return out
}

// niceTicks spans [lo, hi] with about n steps of 1, 2 or 5 × 10^k.
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag * 10
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	// The count bound stops float steps too small to advance v.
	for v := math.Floor(lo/step) * step; len(out) <= 4*n; v += step {
		out = append(out, v)
		if v >= hi-step*1e-9 {
			break
		}
	}
	return out
}

func tickLabel(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'g', 6, 64)
}

func esc(s string) string { return html.EscapeString(s) }
