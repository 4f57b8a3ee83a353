package lb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The lb forwards requests without a body itself, on its own keep-alive
// connections (pool.go), in the handler's goroutine: the request goes out
// in one write and the answer is read where it is copied. Through
// httputil.ReverseProxy and http.Transport the same request also crossed
// to the connection's write goroutine and back and to its read goroutine
// and back, and cloned the request and its headers: 71 allocations a
// request besides the server's, now 13. In BenchmarkVsHAProxy the lb spent
// 3 times HAProxy's CPU a request that way, 2 times now. Requests with a
// body (whose answer may come before the body is sent) and protocol
// upgrades still go through ReverseProxy.
//
// What goes out is what ReverseProxy with SetURL and SetXForwarded sent:
// the hop-by-hop headers and those the Connection header names removed,
// "Te: trailers" kept, Host the backend's address, X-Forwarded-For the
// client's address, X-Forwarded-Host and -Proto set, no User-Agent added,
// Content-Length: 0 on POST, PUT and PATCH. On the way back,
// hop-by-hop headers are removed, 1xx answers are passed on, trailers are
// kept, and event streams and answers of unknown length are flushed as
// they come.

// errCut is a request's error when its backend's drain timed out.
var errCut = fmt.Errorf("drain timeout: %w", context.Canceled)

// direct reports whether the lb forwards r itself.
func direct(r *http.Request) bool {
	return r.ContentLength == 0 && len(r.TransferEncoding) == 0 &&
		len(r.Header["Upgrade"]) == 0 && r.Method != http.MethodConnect
}

func (l *LB) forwardDirect(w http.ResponseWriter, r *http.Request, b *backend, retried bool) {
	pc, res, err := l.roundTrip(r, b, time.Now().Add(l.cfg.Timeout))
	for n := 0; err == nil && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols; n++ {
		// 1xx: pass it on and read on.
		if n == 5 {
			err = errors.New("too many 1xx informational responses")
			break
		}
		h := w.Header()
		copyHeader(h, res.Header)
		w.WriteHeader(res.StatusCode)
		clear(h)
		res, err = pc.readResponse(r)
	}
	if err == nil && res.StatusCode == http.StatusSwitchingProtocols {
		err = errors.New("backend switched protocols unasked")
	}
	if err != nil {
		if pc != nil {
			pc.release(false)
		}
		l.failed(w, r, b, err, retried)
		return
	}

	removeHopByHop(res.Header)
	b.consecErrs.Store(0)
	l.pin(res, b)
	dst := w.Header()
	for k, vv := range res.Header {
		if len(dst[k]) == 0 {
			dst[k] = vv // res is ours alone: share its values
		} else {
			dst[k] = append(dst[k], vv...)
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	if err := copyBody(w, res, streaming(res)); err != nil {
		// As ReverseProxy: all that is left is to cut the client off.
		pc.release(false)
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // at EOF: cheap, and it fills res.Trailer
	pc.release(!res.Close)

	if len(res.Trailer) > 0 {
		// Force chunking, so the trailers have somewhere to go.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	if len(res.Trailer) == announced {
		copyHeader(w.Header(), res.Trailer)
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			w.Header().Add(k, v)
		}
	}
}

// roundTrip sends r to b and reads the answer's head. On a reused
// connection that fails before the answer's first byte (the backend had
// closed it between the liveness peek and the request), a replayable
// request is sent once more, on a new connection, as the transport does.
func (l *LB) roundTrip(r *http.Request, b *backend, deadline time.Time) (*bconn, *http.Response, error) {
	for fresh := false; ; fresh = true {
		var pc *bconn
		if !fresh {
			pc = b.pool.get(deadline)
		}
		if pc == nil {
			var err error
			if pc, err = l.dial(r.Context(), b, deadline); err != nil {
				return nil, nil, err
			}
		}
		pc.stop = context.AfterFunc(r.Context(), pc.clientGone)
		if b.cut.Err() != nil {
			pc.abort(abortCut) // picked from a rotation older than the cut
		}
		writeRequest(pc.bw, r, b.addr)
		err := pc.bw.Flush()
		if err == nil {
			if _, err = pc.br.Peek(1); err == nil {
				res, err := pc.readResponse(r)
				if err != nil {
					pc.release(false)
					return nil, nil, err
				}
				return pc, res, nil
			}
		}
		pc.release(false)
		if !pc.reused || pc.aborted.Load() != notAborted || !replayable(r) {
			return nil, nil, pc.cause(err)
		}
	}
}

// cause is the error a failed read or write on pc stands for.
func (pc *bconn) cause(err error) error {
	switch pc.aborted.Load() {
	case abortClientGone:
		return context.Canceled
	case abortCut:
		return errCut
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

// replayable is the transport's rule for sending a request again.
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := r.Header["Idempotency-Key"]
	_, b := r.Header["X-Idempotency-Key"]
	return a || b
}

// writeRequest writes r's head as the lb forwards it to host.
func writeRequest(bw *bufio.Writer, r *http.Request, host string) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	p := r.URL.EscapedPath()
	if p == "" || p[0] != '/' {
		bw.WriteByte('/')
	}
	bw.WriteString(p)
	if q := r.URL.RawQuery; q != "" || r.URL.ForceQuery {
		bw.WriteByte('?')
		bw.WriteString(cleanQuery(q))
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if hopByHop(k) || forwarding(k) || k == "Host" || k == "Content-Length" ||
			(len(conn) > 0 && tokenIn(conn, k)) {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	if tokenIn(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		writeField(bw, "X-Forwarded-For", ip)
	}
	writeField(bw, "X-Forwarded-Host", r.Host)
	if r.TLS == nil {
		bw.WriteString("X-Forwarded-Proto: http\r\n")
	} else {
		bw.WriteString("X-Forwarded-Proto: https\r\n")
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n") // as the transport: many servers want one
	}
	bw.WriteString("\r\n")
}

// writeField writes one header line; the server has already refused
// requests with line breaks in a value, this is belt and braces.
func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// hopByHop reports the headers of RFC 9110 section 7.6.1 (and the older
// ones ReverseProxy also removes), in canonical form.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// forwarding reports the headers a client may not set: the lb sets them.
func forwarding(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// tokenIn reports whether the comma-separated lists vs name token,
// ignoring case.
func tokenIn(vs []string, token string) bool {
	for _, v := range vs {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// removeHopByHop removes from h the hop-by-hop headers and those its
// Connection header names.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				h.Del(t)
			}
		}
	}
	for k := range h {
		if hopByHop(k) {
			delete(h, k)
		}
	}
}

func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// streaming reports whether res's body is passed on as it comes (as
// ReverseProxy does): a server-sent event stream or a body of unknown
// length.
func streaming(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := strings.TrimSpace(res.Header.Get("Content-Type"))
	if len(ct) < len("text/event-stream") || !strings.EqualFold(ct[:len("text/event-stream")], "text/event-stream") {
		return false
	}
	base, _, _ := mime.ParseMediaType(ct)
	return base == "text/event-stream"
}

// copyBody copies res's body to w, flushing after each write when flush.
func copyBody(w http.ResponseWriter, res *http.Response, flush bool) error {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	f, _ := w.(http.Flusher)
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if flush && f != nil {
				f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// cleanQuery is ReverseProxy's cleanQueryParams: a query it cannot parse
// (semicolons, bad escapes) goes out re-encoded without the bad parts.
func cleanQuery(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
