// Package web is the web role: a small site and JSON API that browsers and
// apps hit through the region's load balancer.
package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"time"

	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/db/dbclient"
	"github.com/faultline/faultline/nodes/nodekit"
	"github.com/prometheus/client_golang/prometheus"
)

// maxEchoBody bounds what /api/echo reads so one client cannot exhaust memory.
const maxEchoBody = 1 << 20

// Run runs the web role until ctx ends. --cores and --service-time set the
// capacity model (see WithCapacity); both zero serve as fast as the machine
// can.
func Run(ctx context.Context, args []string) error {
	var f nodekit.Flags
	fs := nodekit.NewFlagSet("web", &f)
	cores := fs.Int("cores", 0, "requests served at once (0: no limit)")
	serviceTime := fs.Duration("service-time", 0, "time each request holds a core")
	caches := fs.String("cache", "", "comma-separated host:port of the region's cache nodes (memcached protocol; keys spread by consistent hashing)")
	storeLatency := fs.Duration("store-latency", 20*time.Millisecond, "time one read or write of the simulated item store takes")
	cacheTTL := fs.Duration("cache-ttl", time.Minute, "lifetime of an item's cached copy")
	sessionsDB := fs.String("sessions-db", "", "base URL of the region's db node to keep sessions and items in (stateless web tier); empty keeps sessions in this node's memory (stateful) and items in a simulated store")
	if err := nodekit.Parse(fs, args); err != nil {
		return err
	}
	opts, err := capacityOptions(*cores, *serviceTime)
	if err != nil {
		return err
	}
	itemOpt, mc, err := itemOptions(*caches, *storeLatency, *cacheTTL)
	if err != nil {
		return err
	}
	opts = append(opts, itemOpt)
	if *sessionsDB != "" {
		// Stateless: sessions and the users' items in the db, through the
		// same cache client.
		db := dbclient.New(*sessionsDB, dbclient.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
		opts = append(opts, WithSessions(NewDBSessions(db, mc)), WithItems(NewDBItems(db), mc, *cacheTTL))
	}
	reg := nodekit.NewRegistry()
	return nodekit.Serve(ctx, nodekit.NewServer(f.Listen, Handler(f.Node, f.Region, reg, opts...), reg))
}

func capacityOptions(cores int, serviceTime time.Duration) ([]Option, error) {
	switch {
	case cores < 0 || serviceTime < 0:
		return nil, fmt.Errorf("%w: web: --cores %d and --service-time %v must not be negative", nodes.ErrUsage, cores, serviceTime)
	case cores == 0 && serviceTime > 0:
		return nil, fmt.Errorf("%w: web: --service-time needs --cores", nodes.ErrUsage)
	case cores == 0:
		return nil, nil
	}
	return []Option{WithCapacity(cores, serviceTime)}, nil
}

type options struct {
	capacity *capacity
	sessions SessionStore
	items    *items
}

// Option configures Handler.
type Option func(*options)

// WithCapacity serves at most cores requests at once, each holding its core
// for serviceTime, so the node saturates near cores/serviceTime requests a
// second; the rest queue. cores must be positive.
func WithCapacity(cores int, serviceTime time.Duration) Option {
	return func(o *options) { o.capacity = newCapacity(cores, serviceTime) }
}

// WithSessions keeps sessions in s; the default is a new MemSessions.
func WithSessions(s SessionStore) Option { return func(o *options) { o.sessions = s } }

// Hello is the body of GET /api/hello.
type Hello struct {
	Node   string    `json:"node"`
	Region string    `json:"region"`
	Time   time.Time `json:"time"`
}

var page = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>faultline — {{.Node}}</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<h1>faultline</h1>
<p>Served by <strong class="node">{{.Node}}</strong> in region <strong class="region">{{.Region}}</strong>.</p>
</body>
</html>
`))

const appCSS = `body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; }
.node, .region { color: #0b5394; }
`

// Handler serves the site; its routes are instrumented on reg.
func Handler(node, region string, reg prometheus.Registerer, opts ...Option) http.Handler {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.sessions == nil {
		o.sessions = NewMemSessions()
	}
	if o.items == nil {
		WithItems(NewSimStore(0), nil, time.Minute)(&o)
	}
	o.items.register(node, reg)
	if r, ok := o.sessions.(interface{ register(prometheus.Registerer) }); ok {
		r.register(reg) // what the store counts: cache reads, or sessions held
	}
	m := nodekit.NewHTTPMetrics(reg, "web")
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", m.Wrap("index", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// A failed write means the client went away; nothing to report to it.
		_ = page.Execute(w, Hello{Node: node, Region: region})
	})))
	mux.Handle("GET /static/app.css", m.Wrap("static", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=60")
		io.WriteString(w, appCSS)
	})))
	mux.Handle("GET /api/hello", m.Wrap("hello", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, Hello{Node: node, Region: region, Time: time.Now().UTC()})
	})))
	mux.Handle("POST /api/echo", m.Wrap("echo", http.HandlerFunc(echo)))
	mux.Handle("GET "+ItemPath+"{id}", m.Wrap("item-get", http.HandlerFunc(o.items.get)))
	mux.Handle("PUT "+ItemPath+"{id}", m.Wrap("item-put", http.HandlerFunc(o.items.put)))
	s := sessions{store: o.sessions}
	mux.Handle("POST "+LoginPath, m.Wrap("login", http.HandlerFunc(s.login)))
	mux.Handle("GET "+MePath, m.Wrap("me", http.HandlerFunc(s.me)))
	mux.Handle("POST "+LogoutPath, m.Wrap("logout", http.HandlerFunc(s.logout)))
	if o.capacity != nil {
		return o.capacity.wrap(mux)
	}
	return mux
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEchoBody))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if !json.Valid(body) {
		http.Error(w, "body is not JSON", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
