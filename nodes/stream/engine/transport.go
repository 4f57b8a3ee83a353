package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"
)

const (
	dialTimeout  = time.Second
	writeTimeout = 5 * time.Second
	// brokenFor is how long a lane that failed drops sends before redialing,
	// so a dead peer costs one failed dial per period, not one per batch.
	brokenFor = 200 * time.Millisecond
)

// transport carries batches to other workers. There is one connection per
// peer and destination component (lane 0 carries acking messages): a
// reader waiting on one full queue then only holds up tuples for that
// component, and since components form a DAG no two waits form a cycle.
type transport struct {
	w     *Worker
	mu    sync.Mutex
	lanes map[laneKey]*lane
	lane  []int // by task id: lane of the task's component
}

type laneKey struct {
	addr string
	lane int
}

type lane struct {
	ch   chan any // *batch or ctlBatch
	done chan struct{}
}

type ctlBatch struct {
	dst  int32
	msgs []ctl
}

func newTransport(w *Worker) *transport {
	t := &transport{w: w, lanes: map[laneKey]*lane{}, lane: make([]int, w.topo.NumTasks()+1)}
	for i, c := range w.topo.Components {
		for _, id := range c.Tasks {
			t.lane[id] = i + 1
		}
	}
	return t
}

func (t *transport) laneFor(ctx context.Context, key laneKey) *lane {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lanes[key]
	if l == nil {
		l = &lane{ch: make(chan any, t.w.opts.QueueLen), done: make(chan struct{})}
		t.lanes[key] = l
		t.w.wg.Add(1)
		go func() {
			defer t.w.wg.Done()
			t.runLane(ctx, key, l)
		}()
	}
	return l
}

func (t *transport) sendData(ctx context.Context, addr string, b *batch) {
	k := laneKey{addr: addr}
	if int(b.dst) < len(t.lane) {
		k.lane = t.lane[b.dst]
	}
	t.send(ctx, t.laneFor(t.w.ctx, k), b)
}

func (t *transport) sendCtl(ctx context.Context, addr string, dst int32, msgs []ctl) {
	t.send(ctx, t.laneFor(t.w.ctx, laneKey{addr: addr}), ctlBatch{dst: dst, msgs: append([]ctl(nil), msgs...)})
}

func (t *transport) send(ctx context.Context, l *lane, item any) {
	select {
	case l.ch <- item:
		return
	case <-l.done:
	case <-ctx.Done():
	}
	t.w.Stats.Dropped.Add(1)
	if b, ok := item.(*batch); ok {
		putBatch(b)
	}
}

// runLane dials the peer and writes what is queued, coalescing queued
// batches into one write. On any error the lane drops sends for brokenFor
// and is then forgotten, so the next send dials again.
func (t *transport) runLane(ctx context.Context, key laneKey, l *lane) {
	defer func() {
		close(l.done)
		select {
		case <-time.After(brokenFor):
		case <-ctx.Done():
		}
		t.mu.Lock()
		if t.lanes[key] == l {
			delete(t.lanes, key)
		}
		t.mu.Unlock()
	}()
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", key.addr)
	if err != nil {
		return
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	var buf []byte
	for {
		var item any
		select {
		case item = <-l.ch:
		case <-ctx.Done():
			return
		}
		buf = buf[:0]
	coalesce:
		for {
			switch it := item.(type) {
			case *batch:
				buf = appendDataFrame(buf, it)
				putBatch(it)
			case ctlBatch:
				buf = appendCtlFrame(buf, it.dst, it.msgs)
			}
			if len(buf) >= 256<<10 {
				break
			}
			select {
			case item = <-l.ch:
			default:
				break coalesce
			}
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := conn.Write(buf); err != nil {
			return
		}
	}
}

// serve accepts connections from other workers until ctx ends.
func (t *transport) serve(ctx context.Context, ln net.Listener) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			closeConn := context.AfterFunc(ctx, func() { conn.Close() })
			defer closeConn()
			defer conn.Close()
			t.read(ctx, conn)
		}()
	}
}

// read delivers the frames of one connection. A full destination queue
// stops the reading, which TCP turns into backpressure on the sender.
func (t *transport) read(ctx context.Context, conn net.Conn) {
	br := bufio.NewReaderSize(conn, 256<<10)
	dec := newDecoder(t.w.topo)
	var hdr [frameHeader]byte
	var body []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > maxFrameSize {
			return
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		kind, dst, b, ctls, err := dec.decode(body)
		if err != nil {
			return // a peer speaking garbage gets disconnected
		}
		if kind == frameData {
			t.w.deliverLocal(ctx, b)
		} else {
			t.w.deliverLocalCtl(dst, ctls)
		}
	}
}
