package results

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every reference in the report must stay inside the run folder: the page is
// opened offline, from CI artefacts, years later.
func TestHTMLReferencesOnlyTheRunFolder(t *testing.T) {
	s := loadRecordedRun(t, "testdata/kill-run")
	var b bytes.Buffer
	require.NoError(t, HTML(&b, s))
	page := b.String()
	refs := regexp.MustCompile(`(?i)(?:src|href|xlink:href|action)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(page, -1)
	require.NotEmpty(t, refs)
	allowed := map[string]bool{"data:,": true, SummaryFile: true, EventsFile: true, ReportFile: true, JUnitFile: true}
	for _, r := range refs {
		assert.True(t, allowed[r[1]], "reference to %q", r[1])
	}
	for _, banned := range []string{"<script", "url(", "@import", "<iframe", "<object", "<embed"} {
		assert.NotContains(t, strings.ToLower(page), banned)
	}
}

// chromiumBinary finds Debian's chromium (package "chromium") or a renamed one.
func chromiumBinary(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary on PATH: install Debian's package `chromium` (apt-get install -y chromium) to run the HTML acceptance test")
	return ""
}

// rendering is what headless Chromium made of one page.
type rendering struct {
	shot     image.Image
	console  []string // console messages (the page has no script, so any is a fault)
	requests []string // URLs the page itself asked the network for
}

// render opens page in headless Chromium with every network path cut: all
// HTTP goes to a closed loopback port and no name resolves, so even a
// reference the static test missed reaches nothing off this machine. The net
// log still records the attempt, which is how requests are detected.
func render(t *testing.T, bin, page string, width, height int) rendering {
	t.Helper()
	dir := t.TempDir()
	shot, netlog := filepath.Join(dir, "shot.png"), filepath.Join(dir, "net.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--disable-gpu", "--no-sandbox",
		"--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars", "--force-device-scale-factor=1",
		"--enable-logging=stderr", "--v=0", "--log-net-log="+netlog, "--user-data-dir="+filepath.Join(dir, "profile"),
		"--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
		"file://"+page)
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())

	var r rendering
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, ":CONSOLE") {
			r.console = append(r.console, l)
		}
	}
	r.requests = pageRequests(t, netlog)
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	r.shot, err = png.Decode(f)
	require.NoError(t, err)
	return r
}

// pageRequests lists the URL requests whose top frame is a file:// page:
// the browser's own background requests (updater, accounts) have no page.
func pageRequests(t *testing.T, netlog string) []string {
	data, err := os.ReadFile(netlog)
	require.NoError(t, err)
	var log struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int `json:"type"`
			Params struct {
				URL string `json:"url"`
				NIK string `json:"network_isolation_key"`
			} `json:"params"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal(data, &log), "chromium net log")
	start, ok := log.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	require.True(t, ok, "net log without URL_REQUEST_START_JOB events: format changed?")
	var urls []string
	for _, e := range log.Events {
		if e.Type == start && strings.HasPrefix(e.Params.NIK, "file://") {
			urls = append(urls, e.Params.URL)
		}
	}
	return urls
}

// plotArea is one chart's plot rectangle in the screenshot and how much of
// each region's colour is drawn inside it.
type plotArea struct {
	box image.Rectangle
	ink map[string]int
}

// plotAreas finds the plot frames (drawn in frameColor, which nothing else
// uses) and counts, inside each, pixels close to each region's colour.
func plotAreas(img image.Image, colors []regionColor) []plotArea {
	fr := hexRGB(frameColor)
	b := img.Bounds()
	isFrame := func(x, y int) bool { return rgbOf(img, x, y) == fr }
	seen := map[image.Point]bool{}
	var out []plotArea
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if seen[image.Pt(x, y)] || !isFrame(x, y) {
				continue
			}
			// Flood the frame's pixels to find its bounding box.
			box := image.Rect(x, y, x+1, y+1)
			stack := []image.Point{{x, y}}
			seen[image.Pt(x, y)] = true
			for len(stack) > 0 {
				p := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				box = box.Union(image.Rect(p.X, p.Y, p.X+1, p.Y+1))
				for _, d := range []image.Point{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
					q := p.Add(d)
					if q.In(b) && !seen[q] && isFrame(q.X, q.Y) {
						seen[q] = true
						stack = append(stack, q)
					}
				}
			}
			if box.Dx() < 200 || box.Dy() < 60 {
				continue
			}
			pa := plotArea{box: box, ink: map[string]int{}}
			for py := box.Min.Y + 1; py < box.Max.Y-1; py++ {
				for px := box.Min.X + 1; px < box.Max.X-1; px++ {
					c := rgbOf(img, px, py)
					for _, rc := range colors {
						if near(c, hexRGB(rc.Color), 40) {
							pa.ink[rc.Name]++
						}
					}
				}
			}
			out = append(out, pa)
		}
	}
	return out
}

func TestHTMLRendersInChromium(t *testing.T) {
	bin := chromiumBinary(t)
	s := loadRecordedRun(t, "testdata/kill-run")
	s.Markers = []Marker{{T: 17.4, Kind: "leader", Label: "leader → db-eu-west-1"}}
	dir := t.TempDir()
	require.NoError(t, WriteSummary(dir, s))
	require.NoError(t, WriteReports(dir, s))
	colors := []regionColor{{"ap-south", regionPalette[0]}, {"eu-west", regionPalette[1]}, {"us-east", regionPalette[2]}}

	r := render(t, bin, filepath.Join(dir, HTMLFile), 1100, 1800)
	if os.Getenv("FAULTLINE_KEEP_SCREENSHOT") != "" {
		saveShot(t, r.shot, os.Getenv("FAULTLINE_KEEP_SCREENSHOT"))
	}
	assert.Empty(t, r.console, "console messages while rendering report.html")
	assert.Empty(t, r.requests, "report.html asked the network for something")

	areas := plotAreas(r.shot, colors)
	require.Len(t, areas, 2+len(colors), "throughput, error rate and one latency chart per region; found %v", areas)
	for _, a := range areas {
		t.Logf("plot at %v: region-coloured pixels %v", a.box, a.ink)
	}
	// Throughput: the three regions' flat lines overlap; some region's must show.
	assert.Greater(t, sum(areas[0].ink), 300, "throughput chart is blank")
	assert.Greater(t, areas[1].ink["us-east"], 100, "error-rate chart misses us-east's error spike")
	for i, rc := range colors {
		assert.Greater(t, areas[2+i].ink[rc.Name], 500, "latency chart of %s is blank", rc.Name)
	}
}

// The acceptance test above must be able to fail: a page that logs to the
// console and loads a remote image is caught, and charts without data count
// as blank.
func TestChromiumChecksCatchFaults(t *testing.T) {
	bin := chromiumBinary(t)
	dir := t.TempDir()
	s := loadRecordedRun(t, "testdata/kill-run")
	for name, reg := range s.Regions {
		reg.Series = nil
		s.Regions[name] = reg
	}
	var b bytes.Buffer
	require.NoError(t, HTML(&b, s))
	// .invalid never resolves, and the proxy flag keeps the attempt on loopback.
	page := strings.Replace(b.String(), "</body>", `<img src="http://faultline-test.invalid/x.png"><script>console.error("boom")</script></body>`, 1)
	path := filepath.Join(dir, "bad.html")
	require.NoError(t, os.WriteFile(path, []byte(page), 0o644))

	r := render(t, bin, path, 1100, 1800)
	assert.NotEmpty(t, r.console, "console.error went unnoticed")
	assert.Contains(t, r.requests, "http://faultline-test.invalid/x.png")
	areas := plotAreas(r.shot, []regionColor{{"ap-south", regionPalette[0]}, {"eu-west", regionPalette[1]}, {"us-east", regionPalette[2]}})
	require.NotEmpty(t, areas)
	for _, a := range areas {
		assert.Zero(t, sum(a.ink), "a chart without data drew region colours at %v", a.box)
	}
}

func saveShot(t *testing.T, img image.Image, path string) {
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, png.Encode(f, img))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

type rgb [3]int

func rgbOf(img image.Image, x, y int) rgb {
	r, g, b, _ := img.At(x, y).RGBA()
	return rgb{int(r >> 8), int(g >> 8), int(b >> 8)}
}

func hexRGB(h string) rgb {
	v, _ := strconv.ParseUint(strings.TrimPrefix(h, "#"), 16, 32)
	return rgb{int(v >> 16 & 0xff), int(v >> 8 & 0xff), int(v & 0xff)}
}

func near(a, b rgb, tol int) bool {
	d := 0
	for i := range a {
		d += max(a[i]-b[i], b[i]-a[i])
	}
	return d <= tol
}
