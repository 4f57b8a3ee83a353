package results

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/faultline/faultline/loadgen"
)

// HTMLFile is the self-contained report with plots.
const HTMLFile = "report.html"

// HTML renders the run as one self-contained page: inline CSS and inline SVG,
// no script and no reference to anything outside the run folder, so it opens
// offline and from a CI artefact.
func HTML(w io.Writer, s *Summary) error {
	s = derived(s)
	v := htmlView{S: s, Regions: sortedRegions(s.Regions), Bound: 100 * RecoveryBound, Factor: P99Factor, SlackMS: P99SlackMS, Stats: repeated(s.RecoveryStats),
		CPULimit: loadgen.GeneratorCPULimit, AchievedMin: loadgen.GeneratorAchievedMin}
	for i, name := range v.Regions {
		v.Colors = append(v.Colors, regionColor{Name: name, Color: regionPalette[i%len(regionPalette)]})
	}
	for i, f := range s.Faults {
		row := faultRow{Fault: f, Targets: strings.Join(f.Targets, ", ")}
		if i < len(s.Recovery) {
			row.Detect, row.Recover, row.Unavail = recoveryCells(s.Recovery[i])
		}
		v.Faults = append(v.Faults, row)
	}
	v.Charts = charts(s, v.Colors)
	v.Sections = sections(s)
	if err := htmlTmpl.Execute(w, v); err != nil {
		return fmt.Errorf("render %s: %w", HTMLFile, err)
	}
	return nil
}

type htmlView struct {
	S        *Summary
	Regions  []string
	Colors   []regionColor
	Charts   []template.HTML
	Faults   []faultRow
	Stats    []RecoveryStat
	Sections []Section
	Bound    float64
	Factor   float64
	SlackMS  float64
	// The loadgen's own bottleneck thresholds, for the report to state.
	CPULimit, AchievedMin float64
}

type regionColor struct{ Name, Color string }

type faultRow struct {
	Fault
	Targets                  string
	Detect, Recover, Unavail string
}

// recoveryCells formats one recovery for a table: "–" when users never
// noticed the fault, "never" when they never stopped noticing it.
func recoveryCells(r Recovery) (detect, recover, unavail string) {
	if r.DetectS < 0 {
		return "–", "–", "–"
	}
	if r.RecoverS < 0 {
		return secs(r.DetectS), "never", "≥ " + secs(r.UnavailableS)
	}
	return secs(r.DetectS), secs(r.RecoverS), secs(r.UnavailableS)
}

// repeated keeps the fault kinds that occurred more than once: a
// distribution of one is just the row in the fault table.
func repeated(stats []RecoveryStat) []RecoveryStat {
	var out []RecoveryStat
	for _, st := range stats {
		if st.Count > 1 {
			out = append(out, st)
		}
	}
	return out
}

// timeSpan is the length of the run's time axis: the series and every fault
// window must fit.
func timeSpan(s *Summary) float64 {
	span := 0.0
	for _, r := range s.Regions {
		if n := len(r.Series); n > 0 {
			span = math.Max(span, float64(r.Series[n-1].T+1))
		}
	}
	for _, f := range s.Faults {
		span = math.Max(span, f.HealedAt)
	}
	for _, m := range s.Markers {
		span = math.Max(span, m.T)
	}
	if span == 0 {
		span = math.Max(1, s.EndedAt.Sub(s.StartedAt).Seconds())
	}
	return span
}

func charts(s *Summary, colors []regionColor) []template.HTML {
	span := timeSpan(s)
	var bands []band
	for i, f := range s.Faults {
		if !ran(f) {
			continue
		}
		to := f.HealedAt
		if to <= f.InjectedAt {
			to = span // never healed within the run
		}
		label := faultLabel(f)
		if f.Error != "" {
			label += " (failed)"
		}
		bands = append(bands, band{from: f.InjectedAt, to: to, label: label})
		if i < len(s.Recovery) && s.Recovery[i].DetectS >= 0 {
			r := s.Recovery[i]
			from := f.InjectedAt + r.DetectS
			bands = append(bands, band{from: from, to: from + r.UnavailableS, strong: true,
				label: fmt.Sprintf("%s: users affected for %s s", faultLabel(f), secs(r.UnavailableS))})
		}
	}
	base := chart{xMax: span, bands: bands, markers: s.Markers, height: 240}
	rps, errs := base, base
	rps.title = "Throughput (requests/s)"
	errs.title = "Error rate (% of requests per second)"
	errs.hlines = []hline{{y: 100 * RecoveryBound, label: fmt.Sprintf("recovery bound %s%%", num(100*RecoveryBound)), color: bandFill}}
	var lat []template.HTML
	for _, rc := range colors {
		r := s.Regions[rc.Name]
		xs := make([]float64, len(r.Series))
		tp, er, p50, p99, pmax := make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs))
		for i, pt := range r.Series {
			// A point sits in the middle of its second.
			xs[i] = float64(pt.T) + 0.5
			tp[i] = pt.RPS
			if pt.RPS == 0 {
				er[i], p50[i], p99[i], pmax[i] = math.NaN(), math.NaN(), math.NaN(), math.NaN()
				continue
			}
			er[i] = 100 * float64(pt.Errors) / pt.RPS
			p50[i], p99[i], pmax[i] = pt.P50, pt.P99, pt.Max
			if pt.Max == 0 {
				pmax[i] = math.NaN() // series recorded before per-second max existed
			}
		}
		rps.lines = append(rps.lines, line{name: rc.Name, color: rc.Color, width: 2, opacity: 1, xs: xs, ys: tp})
		errs.lines = append(errs.lines, line{name: rc.Name, color: rc.Color, width: 2, opacity: 1, xs: xs, ys: er})
		lc := base
		lc.height = 200
		lc.log = true
		lc.title = "Latency in " + rc.Name + " (ms, log scale): p50 dashed, p99 solid, max dotted"
		lc.lines = []line{
			{name: rc.Name + " max", color: rc.Color, dash: "1 3", width: 1.5, opacity: 0.6, xs: xs, ys: pmax},
			{name: rc.Name + " p50", color: rc.Color, dash: "6 3", width: 1.5, opacity: 1, xs: xs, ys: p50},
			{name: rc.Name + " p99", color: rc.Color, width: 2.2, opacity: 1, xs: xs, ys: p99},
		}
		if b, ok := s.BaselineP99MS[rc.Name]; ok {
			lc.hlines = []hline{{y: P99Limit(b), label: fmt.Sprintf("recovery limit %s ms (baseline p99 %s ms)", num(P99Limit(b)), num(b)), color: "#475569"}}
		}
		lat = append(lat, lc.render())
	}
	return append([]template.HTML{rps.render(), errs.render()}, lat...)
}

var htmlTmpl = template.Must(template.New(HTMLFile).Funcs(template.FuncMap{
	"num":  num,
	"pct":  func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) },
	"secs": secs,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>faultline {{.S.Scenario}} {{.S.RunID}}: {{.S.Verdict}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#0f172a;background:#fff;margin:24px auto;max-width:1000px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
.meta{color:#475569}.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.pass{background:#16a34a}.fail{background:#dc2626}.err{background:#fef2f2;border:1px solid #fecaca;padding:8px 12px;border-radius:6px;color:#991b1b}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{padding:4px 8px;border-bottom:1px solid #e2e8f0;text-align:left}
th{background:#f1f5f9;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fef2f2}.ok{color:#15803d}.no{color:#b91c1c;font-weight:700}code{font:12px ui-monospace,"DejaVu Sans Mono",monospace;background:#f1f5f9;padding:1px 4px;border-radius:3px}
.legend{display:flex;gap:18px;flex-wrap:wrap;margin:8px 0}.legend span{display:inline-flex;align-items:center;gap:6px}
.sw{width:18px;height:4px;border-radius:2px;display:inline-block}.fw{width:18px;height:12px;background:rgba(220,38,38,.15);display:inline-block}
.uw{width:18px;height:6px;background:rgba(220,38,38,.55);display:inline-block}.mk{width:0;height:14px;border-left:2px dotted #7c3aed;display:inline-block}
svg.chart{display:block;margin:10px 0;max-width:100%;height:auto}
svg .title{font-size:13px;font-weight:600;fill:#0f172a}svg .grid{stroke:#e2e8f0;stroke-width:1}
svg .ytick{font-size:11px;fill:#475569;text-anchor:end}svg .xtick{font-size:11px;fill:#475569;text-anchor:middle}
svg .band{font-size:11px;fill:#991b1b}svg .marker{font-size:10px;fill:#7c3aed}svg .hline{font-size:10px;text-anchor:end}
</style></head><body>
<h1>faultline run <code>{{.S.RunID}}</code> <span class="badge {{if eq .S.Verdict "pass"}}pass{{else}}fail{{end}}">{{.S.Verdict}}</span></h1>
<p class="meta">Scenario <b>{{.S.Scenario}}</b>, seed {{.S.Seed}}, {{.S.StartedAt.UTC.Format "2006-01-02 15:04:05Z"}} → {{.S.EndedAt.UTC.Format "15:04:05Z"}}; startup (first container created → all nodes healthy) {{num .S.StartupS}} s.</p>
{{with .S.Error}}<p class="err"><b>Run error:</b> {{.}}</p>{{end}}

<h2>Checks</h2>
<table><tr><th>check</th><th>expression</th><th class="n">value</th><th>verdict</th></tr>
{{range .S.Checks}}<tr{{if not .Pass}} class="bad"{{end}}><td>{{.Name}}</td><td><code>{{.Expr}}</code></td><td class="n">{{num .Value}}</td><td>{{if .Pass}}<span class="ok">✓ pass</span>{{else}}<span class="no">✗ fail</span>{{end}}</td></tr>
{{else}}<tr><td colspan="4">no checks</td></tr>{{end}}</table>

<h2>Over time</h2>
<div class="legend">{{range .Colors}}<span><i class="sw" style="background:{{.Color}}"></i>{{.Name}}</span>{{end}}<span><i class="fw"></i>fault window</span><span><i class="uw"></i>users affected (detect → recover)</span>{{if .S.Markers}}<span><i class="mk"></i>event</span>{{end}}</div>
{{range .Charts}}{{.}}
{{end}}
<h2>Faults and recovery</h2>
{{if .Faults}}<p class="meta">Detect: first failed request after injection. Recover: first second (held for two) with an error rate ≤ {{num .Bound}}% and p99 ≤ max({{num .Factor}}× baseline, baseline + {{num .SlackMS}} ms) in every region. Unavailable: detection to recovery. Seconds since injection.</p>
<table><tr><th>fault</th><th>targets</th><th class="n">injected s</th><th class="n">healed s</th><th class="n">detect s</th><th class="n">recover s</th><th class="n">unavailable s</th></tr>
{{range .Faults}}<tr{{if eq .Recover "never"}} class="bad"{{end}}><td>{{.Kind}}{{with .Error}} <b>(failed: {{.}})</b>{{end}}</td><td>{{.Targets}}</td><td class="n">{{secs .InjectedAt}}</td><td class="n">{{secs .HealedAt}}</td><td class="n">{{.Detect}}</td><td class="n">{{.Recover}}</td><td class="n">{{.Unavail}}</td></tr>
{{end}}</table>
{{with .Stats}}<table><tr><th>repeated fault</th><th class="n">count</th><th class="n">unnoticed</th><th class="n">never recovered</th><th class="n">detect p50 / max s</th><th class="n">recover p50 / max s</th><th class="n">unavailable p50 / max s</th></tr>
{{range .}}<tr><td>{{.Kind}}</td><td class="n">{{.Count}}</td><td class="n">{{.Unnoticed}}</td><td class="n">{{.NeverRecovered}}</td><td class="n">{{num .DetectP50S}} / {{num .DetectMaxS}}</td><td class="n">{{num .RecoverP50S}} / {{num .RecoverMaxS}}</td><td class="n">{{num .UnavailP50S}} / {{num .UnavailMaxS}}</td></tr>
{{end}}</table>{{end}}
{{else}}<p>No faults in this run.</p>{{end}}

<h2>What users felt, per region</h2>
<table><tr><th>region</th><th class="n">requests</th><th class="n">errors</th><th class="n">error rate</th><th class="n">p50 ms</th><th class="n">p90 ms</th><th class="n">p99 ms</th><th class="n">max ms</th><th class="n">baseline p99 ms</th><th>errors by kind</th></tr>
{{range .Regions}}{{$r := index $.S.Regions .}}<tr><td>{{.}}</td><td class="n">{{$r.Requests}}</td><td class="n">{{$r.Errors}}</td><td class="n">{{pct $r.ErrorRate}}</td><td class="n">{{num $r.LatencyMS.P50}}</td><td class="n">{{num $r.LatencyMS.P90}}</td><td class="n">{{num $r.LatencyMS.P99}}</td><td class="n">{{num $r.LatencyMS.Max}}</td><td class="n">{{with index $.S.BaselineP99MS .}}{{num .}}{{else}}–{{end}}</td><td>{{range $k, $v := $r.ErrorsByKind}}{{$k}}: {{$v}} {{end}}</td></tr>
{{end}}<tr><td><b>all</b></td><td class="n">{{.S.Total.Requests}}</td><td class="n">{{.S.Total.Errors}}</td><td class="n">{{pct .S.Total.ErrorRate}}</td><td class="n">{{num .S.Total.LatencyMS.P50}}</td><td class="n">{{num .S.Total.LatencyMS.P90}}</td><td class="n">{{num .S.Total.LatencyMS.P99}}</td><td class="n">{{num .S.Total.LatencyMS.Max}}</td><td></td><td></td></tr></table>
{{with .S.Markers}}<h2>Events</h2><table><tr><th class="n">t s</th><th>kind</th><th>what</th></tr>
{{range .}}<tr><td class="n">{{secs .T}}</td><td>{{.Kind}}</td><td>{{.Label}}</td></tr>
{{end}}</table>{{end}}
{{with .S.Capacity}}<h2>Capacity</h2><p class="meta">A step load raised the rate until a second broke the SLO; the capacity is the highest step whose every full second met it.</p>
<table><tr><th>region</th><th class="n">max sustainable req/s</th><th class="n">steps met</th><th>SLO</th><th>what broke</th></tr>
{{range $k, $c := .}}<tr><td>{{$k}}</td><td class="n">{{num $c.RateRPS}}</td><td class="n">{{$c.Steps}}</td><td>p99 ≤ {{num $c.SLOP99MS}} ms, errors ≤ {{pct $c.SLOErrorRate}}</td><td>{{with $c.Broke}}{{.}}{{else}}nothing: capacity is at least this{{end}}</td></tr>
{{end}}</table>{{end}}
{{with .S.ClosedModel}}<h2>Closed model: X = N / (R + Z)</h2><p class="meta">N users, each thinking Z between a response and its next request, with response time R, should complete X = N/(R+Z) requests a second.</p>
<table><tr><th>region</th><th class="n">users N</th><th class="n">think Z s</th><th class="n">response R s</th><th class="n">throughput X req/s</th><th class="n">N/(R+Z)</th><th class="n">error</th><th>law holds</th></tr>
{{range $k, $c := .}}<tr{{if not $c.LawHolds}} class="bad"{{end}}><td>{{$k}}</td><td class="n">{{$c.Users}}</td><td class="n">{{num $c.ThinkS}}</td><td class="n">{{num $c.ResponseS}}</td><td class="n">{{num $c.ThroughputRPS}}</td><td class="n">{{num $c.PredictedRPS}}</td><td class="n">{{pct $c.LawError}}</td><td>{{if $c.LawHolds}}yes{{else}}no{{end}}</td></tr>
{{end}}</table>{{end}}
{{range .Sections}}<h2>{{.Title}}</h2>{{with .Note}}<p class="meta">{{.}}</p>{{end}}
{{if .Header}}{{$num := .Numeric}}<table><tr>{{range $i, $h := .Names}}<th{{if index $num $i}} class="n"{{end}}>{{$h}}</th>{{end}}</tr>
{{range .Rows}}<tr{{if .Bad}} class="bad"{{end}}>{{range $i, $c := .Cells}}<td{{if and (lt $i (len $num)) (index $num $i)}} class="n"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>{{end}}{{end}}
{{with .S.Loadgen}}<h2>Load generators</h2><p class="meta">A generator that used more than {{num $.CPULimit}} of a core, or sent under {{pct $.AchievedMin}} of the requests due, set the pace itself: the figures then describe it more than the system under test.</p>
<table><tr><th>region</th><th class="n">CPU s</th><th class="n">CPU % of one core</th><th>generator-limited</th></tr>
{{range $k, $v := .}}<tr{{if or $v.GeneratorLimited $v.LimitedSeconds}} class="bad"{{end}}><td>{{$k}}</td><td class="n">{{num $v.CPUSeconds}}</td><td class="n">{{printf "%.1f" $v.CPUPercent}}</td><td>{{with $v.GeneratorLimited}}{{.}}{{else}}no{{end}}{{with $v.LimitedSeconds}}; behind in {{len .}} s: t = {{range $i, $t := .}}{{if $i}}, {{end}}{{$t}}{{end}}{{end}}</td></tr>
{{end}}</table>{{end}}
<h2>Artefacts in this run folder</h2>
<p><a href="summary.json">summary.json</a> (all figures) · <a href="events.jsonl">events.jsonl</a> (what happened, in order) · <a href="report.md">report.md</a> · <a href="junit.xml">junit.xml</a> (checks as tests)</p>
</body></html>
`))
