package edge

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cacheControl is the part of a Cache-Control header a shared cache acts on.
type cacheControl struct {
	maxAge, sMaxAge  time.Duration
	hasMaxAge, hasS  bool
	noStore, noCache bool
	private, public  bool
}

// parseCacheControl reads directives leniently, as caches must: unknown
// directives and malformed values are ignored, a bad max-age counts as 0.
func parseCacheControl(h http.Header) cacheControl {
	var cc cacheControl
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "max-age":
				cc.maxAge, cc.hasMaxAge = seconds(val), true
			case "s-maxage":
				cc.sMaxAge, cc.hasS = seconds(val), true
			case "no-store":
				cc.noStore = true
			case "no-cache":
				cc.noCache = true
			case "private":
				cc.private = true
			case "public":
				cc.public = true
			}
		}
	}
	return cc
}

func seconds(s string) time.Duration {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	const most = int64(1<<63-1) / int64(time.Second)
	return time.Duration(min(n, most)) * time.Second
}

// freshness is how long a response stays fresh after it left the origin,
// and whether a shared cache may store it at all. Without an explicit
// lifetime nothing is stored: guessing one would hide origin changes.
// no-cache would need revalidation on every use, which this edge does not
// do, so it is treated like no-store.
func freshness(h http.Header, now time.Time) (time.Duration, bool) {
	cc := parseCacheControl(h)
	switch {
	case cc.noStore, cc.noCache, cc.private:
		return 0, false
	case cc.hasS:
		return cc.sMaxAge, cc.sMaxAge > 0
	case cc.hasMaxAge:
		return cc.maxAge, cc.maxAge > 0
	}
	exp := h.Get("Expires")
	if exp == "" {
		return 0, false
	}
	t, err := http.ParseTime(exp)
	if err != nil {
		return 0, false // an invalid Expires means already expired
	}
	base := now
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		base = d
	}
	life := t.Sub(base)
	return life, life > 0
}

// initialAge is the Age the response already had when it arrived.
func initialAge(h http.Header) time.Duration { return seconds(h.Get("Age")) }

// storable reports whether a response to r may be stored by a shared cache
// at all, before its freshness is looked at.
func storable(r *http.Request, resp *http.Response) bool {
	return resp.StatusCode == http.StatusOK &&
		r.Header.Get("Authorization") == "" &&
		resp.Header.Get("Set-Cookie") == "" &&
		// One entry per URL: a response that varies by request header
		// would be served to requests it was not made for.
		resp.Header.Get("Vary") == ""
}
