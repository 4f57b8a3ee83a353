package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// A workload is a named request mix. The open model needs a targeter
// (vegeta calls it from many workers at once, so it must be safe for that);
// the closed model runs one script per user. A workload that needs per-user
// state (a session) has no targeter.
type workload struct {
	targeter func(base *url.URL) vegeta.Targeter
	user     func(base *url.URL, id int, rng *rand.Rand) script
}

func (w *workload) open() bool { return w != nil && w.targeter != nil }

// script is one closed-model user's sequence of requests.
type script interface {
	// next returns the user's next request.
	next() (*http.Request, error)
	// check sees the response to it (body at most maxBody bytes), or nil
	// when none arrived. Its error counts a request that otherwise succeeded
	// as a KindCheck failure.
	check(resp *http.Response, body []byte) error
}

// maxBody bounds what a user script reads of a response.
const maxBody = 1 << 20

// workloads registers every workload by name; adding one is one line.
var workloads = map[string]*workload{
	"api":     {targeter: apiTargeter, user: newAPIUser},
	"browse":  {targeter: paths("/", "/static/app.css"), user: newBrowseUser},
	"session": {user: newSessionUser},
	"items":   {targeter: itemsTargeter},
	"static":  {targeter: paths("/static/app.css")},
}

// The items mix: itemsHotShare of the reads go to itemsHot popular items,
// the rest to itemsCold others, so a cache in front of the store has a
// realistic working set (most hits on few keys, a long tail of misses).
const (
	itemsHot      = 100
	itemsCold     = 10_000
	itemsHotShare = 9 // of 10
)

// itemsTargeter reads /api/item/{id}; the sequence of ids is fixed (a hash
// of the request number), so runs with the same rate read the same items.
func itemsTargeter(base *url.URL) vegeta.Targeter {
	var n atomic.Uint64
	return func(t *vegeta.Target) error {
		h := splitmix(n.Add(1))
		id := itemsHot + (h/10)%itemsCold
		if h%10 < itemsHotShare {
			id = (h / 10) % itemsHot
		}
		*t = vegeta.Target{Method: http.MethodGet, URL: base.JoinPath("/api/item/", fmt.Sprint(id)).String(), Header: getHeader}
		return nil
	}
}

// splitmix is SplitMix64's finaliser: a cheap, well-spread hash of i.
func splitmix(i uint64) uint64 {
	i += 0x9e3779b97f4a7c15
	i = (i ^ (i >> 30)) * 0xbf58476d1ce4e5b9
	i = (i ^ (i >> 27)) * 0x94d049bb133111eb
	return i ^ (i >> 31)
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

const userAgent = "faultline-loadgen"

var getHeader = http.Header{"User-Agent": []string{userAgent}}
var jsonHeader = http.Header{"User-Agent": []string{userAgent}, "Content-Type": []string{"application/json"}}

// paths cycles GET requests over ps in order.
func paths(ps ...string) func(*url.URL) vegeta.Targeter {
	return func(base *url.URL) vegeta.Targeter {
		urls := make([]string, len(ps))
		for i, p := range ps {
			urls[i] = base.JoinPath(p).String()
		}
		var n atomic.Uint64
		return func(t *vegeta.Target) error {
			i := (n.Add(1) - 1) % uint64(len(urls))
			*t = vegeta.Target{Method: http.MethodGet, URL: urls[i], Header: getHeader}
			return nil
		}
	}
}

// apiReadsPerWrite is the api mix: three reads of /api/hello, then one JSON
// write to /api/echo.
const apiReadsPerWrite = 3

func apiTargeter(base *url.URL) vegeta.Targeter {
	hello, echo := base.JoinPath("/api/hello").String(), base.JoinPath("/api/echo").String()
	var n atomic.Uint64
	return func(t *vegeta.Target) error {
		i := n.Add(1) - 1
		if i%(apiReadsPerWrite+1) < apiReadsPerWrite {
			*t = vegeta.Target{Method: http.MethodGet, URL: hello, Header: getHeader}
			return nil
		}
		*t = vegeta.Target{Method: http.MethodPost, URL: echo, Header: jsonHeader, Body: echoBody(i)}
		return nil
	}
}

func echoBody(i uint64) []byte { return fmt.Appendf(nil, `{"seq":%d}`, i) }

func newRequest(method, u string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("request %s %s: %w", method, u, err)
	}
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// apiUser sends the api mix and checks that every echo comes back intact.
type apiUser struct {
	hello, echo string
	n           uint64
	sent        []byte
}

func newAPIUser(base *url.URL, _ int, _ *rand.Rand) script {
	return &apiUser{hello: base.JoinPath("/api/hello").String(), echo: base.JoinPath("/api/echo").String()}
}

func (u *apiUser) next() (*http.Request, error) {
	i := u.n
	u.n++
	if i%(apiReadsPerWrite+1) < apiReadsPerWrite {
		u.sent = nil
		return newRequest(http.MethodGet, u.hello, nil)
	}
	u.sent = echoBody(i)
	return newRequest(http.MethodPost, u.echo, u.sent)
}

func (u *apiUser) check(resp *http.Response, body []byte) error {
	if resp != nil && u.sent != nil && !bytes.Equal(bytes.TrimSpace(body), u.sent) {
		return fmt.Errorf("echo: sent %s, got %.100s", u.sent, body)
	}
	return nil
}

// assetRef finds the static files a page links to.
var assetRef = regexp.MustCompile(`<(?:link|script|img)\b[^>]*\b(?:href|src)="([^"]+)"`)

// browseUser loads a page, then each static file it references on the same
// host (never elsewhere: load stays on the system under test), then the
// page again.
type browseUser struct {
	base  *url.URL
	queue []string
	page  bool // the request in flight is the page
}

func newBrowseUser(base *url.URL, _ int, _ *rand.Rand) script { return &browseUser{base: base} }

func (u *browseUser) next() (*http.Request, error) {
	if len(u.queue) == 0 {
		u.page = true
		return newRequest(http.MethodGet, u.base.JoinPath("/").String(), nil)
	}
	u.page = false
	next := u.queue[0]
	u.queue = u.queue[1:]
	return newRequest(http.MethodGet, next, nil)
}

func (u *browseUser) check(resp *http.Response, body []byte) error {
	if !u.page || resp == nil {
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		return fmt.Errorf("page: content type %q", ct)
	}
	for _, m := range assetRef.FindAllSubmatch(body, -1) {
		ref, err := u.base.Parse(string(m[1]))
		if err != nil || ref.Host != u.base.Host {
			continue
		}
		u.queue = append(u.queue, ref.String())
	}
	return nil
}

// Session endpoints of the web role.
const (
	LoginPath     = "/login"
	LogoutPath    = "/logout"
	MePath        = "/api/me"
	SessionCookie = "faultline_session"
)

// Login is the body of POST /login and of GET /api/me's answer.
type Login struct {
	User string `json:"user"`
}

// sessionUser logs in as a fresh user name, acts (who am I, an echo, who am
// I again) and logs out, over and over; every step must see the user it
// logged in as.
//
// A "me" answered 401 means the server lost the session (the node that
// held it in memory died): the user logs in again at once, so in this
// workload every 4xx is one lost session. Other cookies (the lb's session
// affinity) are kept across rounds, as a browser would.
type sessionUser struct {
	login, logout, me, echo string
	id, round, step         int
	user                    string
	cookie                  *http.Cookie
	others                  map[string]*http.Cookie // by name
}

var sessionSteps = []string{"login", "me", "echo", "me", "logout"}

// sessionStepMe is the first "me" step of sessionSteps.
const sessionStepMe = 1

func newSessionUser(base *url.URL, id int, _ *rand.Rand) script {
	return &sessionUser{
		login: base.JoinPath(LoginPath).String(), logout: base.JoinPath(LogoutPath).String(),
		me: base.JoinPath(MePath).String(), echo: base.JoinPath("/api/echo").String(), id: id,
	}
}

func (u *sessionUser) next() (*http.Request, error) {
	var req *http.Request
	var err error
	switch sessionSteps[u.step] {
	case "login":
		u.round++
		u.user, u.cookie = fmt.Sprintf("user-%d-%d", u.id, u.round), nil
		body, _ := json.Marshal(Login{User: u.user})
		req, err = newRequest(http.MethodPost, u.login, body)
	case "me":
		req, err = newRequest(http.MethodGet, u.me, nil)
	case "echo":
		req, err = newRequest(http.MethodPost, u.echo, []byte(`{"user":"`+u.user+`"}`))
	case "logout":
		req, err = newRequest(http.MethodPost, u.logout, nil)
	}
	if err == nil && u.cookie != nil {
		req.AddCookie(u.cookie)
	}
	if err == nil {
		for _, c := range u.others {
			req.AddCookie(c)
		}
	}
	return req, err
}

func (u *sessionUser) check(resp *http.Response, body []byte) error {
	step := sessionSteps[u.step]
	// A failed step still moves on, so one bad answer does not wedge the
	// user; a login that failed leaves no cookie and the next "me" says so.
	u.step = (u.step + 1) % len(sessionSteps)
	if resp == nil || resp.StatusCode >= 500 {
		switch {
		case step == "login":
			u.step = 0 // no session to use: log in again
		case u.cookie != nil:
			// The node holding the session may have died: ask who we are
			// next, as a user reloading would, so a lost session is seen
			// (a 401) rather than skipped by a logout and a fresh login.
			u.step = sessionStepMe
		}
		if resp == nil {
			return nil
		}
		return fmt.Errorf("%s: %s", step, resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name != SessionCookie {
			if u.others == nil {
				u.others = map[string]*http.Cookie{}
			}
			u.others[c.Name] = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	switch step {
	case "login":
		for _, c := range resp.Cookies() {
			if c.Name == SessionCookie {
				u.cookie = &http.Cookie{Name: c.Name, Value: c.Value}
				return nil
			}
		}
		u.step = 0
		return errors.New("login: no session cookie")
	case "me":
		if resp.StatusCode == http.StatusUnauthorized && u.cookie != nil {
			u.step = 0 // the session is lost; the 401 counts it
			return errors.New("me: session lost")
		}
		var got Login
		if err := json.Unmarshal(body, &got); err != nil {
			return fmt.Errorf("me: %w", err)
		}
		if got.User != u.user {
			return fmt.Errorf("me: logged in as %q, server says %q", u.user, got.User)
		}
	}
	return nil
}
