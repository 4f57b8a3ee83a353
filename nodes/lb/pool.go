package lb

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The lb keeps its own keep-alive connections to each backend for the
// requests it forwards itself (see direct.go), with the limits the
// transport had.
const (
	maxIdlePerBackend = 256
	idleConnTimeout   = 90 * time.Second
	// maxResponseHeader bounds an answer's head, as the transport's
	// MaxResponseHeaderBytes default does.
	maxResponseHeader = 10 << 20
)

// Why a connection was aborted; an abort makes its pending and later reads
// and writes fail at once, and the connection is never reused.
const (
	notAborted int32 = iota
	abortClientGone
	abortCut
)

// aLongTimeAgo is a deadline that makes every blocked read and write fail.
var aLongTimeAgo = time.Unix(1, 0)

// pool is one backend's connections: the idle ones, most recently used
// last, and every open one, so a drain timeout can cut the busy ones.
type pool struct {
	mu     sync.Mutex
	idle   []*bconn
	open   map[*bconn]struct{}
	closed bool // drained or cut: nothing more is pooled
	isCut  bool // a drain timed out: no new connections either
}

func newPool() *pool { return &pool{open: map[*bconn]struct{}{}} }

// bconn is one keep-alive connection to a backend.
type bconn struct {
	p        *pool
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	raw      syscall.RawConn // for the liveness peek; nil if the conn has none
	limit    int64           // bytes br may still read: see Read
	reused   bool            // taken from the pool rather than just dialled
	lastUsed time.Time       // when it went idle
	aborted  atomic.Int32
	stop     func() bool // unregisters the request's client-gone hook

	clientGone func() // abort(abortClientGone), built once per connection
	peekFn     func(fd uintptr) bool
	peekDead   bool
	peekBuf    [1]byte
}

func (p *pool) add(c net.Conn) (*bconn, bool) {
	pc := &bconn{p: p, c: c, bw: bufio.NewWriterSize(c, 4<<10), limit: math.MaxInt64}
	pc.br = bufio.NewReaderSize(pc, 4<<10)
	pc.clientGone = func() { pc.abort(abortClientGone) }
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			pc.raw = raw
			pc.peekFn = func(fd uintptr) bool {
				pc.peekDead = !peekIdle(fd, pc.peekBuf[:])
				return true
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isCut {
		return nil, false
	}
	p.open[pc] = struct{}{}
	return pc, true
}

// get takes the most recently used idle connection that is still open,
// with deadline set, or returns nil.
func (p *pool) get(deadline time.Time) *bconn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		pc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		// The deadline first: a raw read fails at once past an old one.
		if pc.c.SetDeadline(deadline) == nil && pc.alive() {
			pc.reused = true
			return pc
		}
		pc.close()
	}
}

// alive reports whether an idle connection is still usable: the backend
// has neither closed it (it restarted, or timed out the idle connection)
// nor sent anything unasked. The transport learns this from a read it
// keeps pending on every idle connection; one non-blocking peek when the
// connection is taken costs less than that read's goroutine.
func (pc *bconn) alive() bool {
	if pc.raw == nil {
		return true
	}
	if err := pc.raw.Read(pc.peekFn); err != nil {
		return false
	}
	return !pc.peekDead
}

// put returns a connection after a complete exchange: to the idle list
// unless it must not be reused.
func (p *pool) put(pc *bconn) {
	if pc.aborted.Load() != notAborted || pc.br.Buffered() > 0 {
		pc.close()
		return
	}
	pc.lastUsed = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerBackend {
		p.mu.Unlock()
		pc.close()
		return
	}
	p.idle = append(p.idle, pc)
	p.mu.Unlock()
}

func (pc *bconn) close() {
	pc.p.mu.Lock()
	delete(pc.p.open, pc)
	pc.p.mu.Unlock()
	_ = pc.c.Close()
}

// Read reads from the connection for br, at most limit bytes.
func (pc *bconn) Read(p []byte) (int, error) {
	if pc.limit <= 0 {
		return 0, fmt.Errorf("answer's head over %d bytes", maxResponseHeader)
	}
	if int64(len(p)) > pc.limit {
		p = p[:pc.limit]
	}
	n, err := pc.c.Read(p)
	pc.limit -= int64(n)
	return n, err
}

// readResponse reads an answer's head to r, no longer than maxResponseHeader.
func (pc *bconn) readResponse(r *http.Request) (*http.Response, error) {
	pc.limit = maxResponseHeader - int64(pc.br.Buffered())
	res, err := http.ReadResponse(pc.br, r)
	pc.limit = math.MaxInt64
	if err != nil {
		return nil, pc.cause(err)
	}
	return res, nil
}

// abort makes pc's blocked and later reads and writes fail; the first
// reason sticks.
func (pc *bconn) abort(why int32) {
	pc.aborted.CompareAndSwap(notAborted, why)
	_ = pc.c.SetDeadline(aLongTimeAgo)
}

// release ends a request's use of pc: back to the pool when reusable is
// true and the client-gone hook had not fired, else closed.
func (pc *bconn) release(reusable bool) {
	stopped := pc.stop == nil || pc.stop()
	pc.stop = nil
	if reusable && stopped {
		pc.p.put(pc)
		return
	}
	pc.close()
}

// cut aborts every open connection (the busy ones' requests fail) and
// closes the pool: a drain timed out.
func (p *pool) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed, p.isCut = true, true
	for pc := range p.open {
		pc.abort(abortCut)
	}
	for _, pc := range p.idle {
		delete(p.open, pc)
		_ = pc.c.Close()
	}
	p.idle = nil
}

// shut closes the idle connections and pools no more: the backend is gone.
// Late requests that picked it from an old rotation still get (and then
// close) connections.
func (p *pool) shut() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	for _, pc := range idle {
		delete(p.open, pc)
	}
	p.mu.Unlock()
	for _, pc := range idle {
		_ = pc.c.Close()
	}
}

// expire closes connections idle since before t.
func (p *pool) expire(t time.Time) {
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && p.idle[n].lastUsed.Before(t) {
		n++
	}
	old := make([]*bconn, n)
	copy(old, p.idle[:n])
	p.idle = append(p.idle[:0], p.idle[n:]...)
	clear(p.idle[len(p.idle):cap(p.idle)])
	for _, pc := range old {
		delete(p.open, pc)
	}
	p.mu.Unlock()
	for _, pc := range old {
		_ = pc.c.Close()
	}
}

// dial opens a new connection to addr, bounded by ctx, the dial timeout
// and deadline, which it keeps as the connection's deadline.
func (l *LB) dial(ctx context.Context, b *backend, deadline time.Time) (*bconn, error) {
	c, err := l.dialer.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		return nil, err
	}
	pc, ok := b.pool.add(c)
	if !ok {
		c.Close()
		return nil, errCut
	}
	return pc, nil
}
