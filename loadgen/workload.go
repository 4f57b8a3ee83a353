package loadgen

import (
	"net/http"
	"net/url"
	"sort"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// A workload turns a base URL into the Targeter of its request mix. Vegeta
// calls a Targeter from many workers at once, so it must be safe for that.
type workload func(base *url.URL) vegeta.Targeter

// workloads registers every workload by name; adding one is one line.
var workloads = map[string]workload{
	"api":    paths("/api/hello"),
	"browse": paths("/", "/static/app.css"),
}

// Workloads lists the workload names, sorted.
func Workloads() []string {
	out := make([]string, 0, len(workloads))
	for n := range workloads {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var userAgent = http.Header{"User-Agent": []string{"faultline-loadgen"}}

// paths cycles GET requests over ps in order.
func paths(ps ...string) workload {
	return func(base *url.URL) vegeta.Targeter {
		urls := make([]string, len(ps))
		for i, p := range ps {
			urls[i] = base.JoinPath(p).String()
		}
		var n atomic.Uint64
		return func(t *vegeta.Target) error {
			i := (n.Add(1) - 1) % uint64(len(urls))
			*t = vegeta.Target{Method: http.MethodGet, URL: urls[i], Header: userAgent}
			return nil
		}
	}
}
