package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned by calls on a closed or broken connection.
var ErrClosed = errors.New("connection closed")

// Conn is a client connection that multiplexes concurrent calls by
// correlation id. A broken connection fails every pending call and stays
// broken: callers dial a new one.
type Conn struct {
	nc      net.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[uint32]chan []byte
	next    uint32
	done    chan struct{}
	err     error
}

// Dial connects to a broker.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &Conn{nc: nc, pending: map[uint32]chan []byte{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Addr is the remote address.
func (c *Conn) Addr() string { return c.nc.RemoteAddr().String() }

// Done is closed once the connection is broken or closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

func (c *Conn) readLoop() {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var err error
	for {
		var frame []byte
		frame, err = ReadFrame(r, nil)
		if err != nil {
			break
		}
		var corr uint32
		corr, _, err = ResponseCorrelation(frame)
		if err != nil {
			break
		}
		c.mu.Lock()
		ch, ok := c.pending[corr]
		delete(c.pending, corr)
		c.mu.Unlock()
		if ok {
			ch <- frame[4:] // buffered: never blocks
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %s: %v", ErrClosed, c.nc.RemoteAddr(), err)
	c.pending = nil
	c.mu.Unlock()
	close(c.done)
	_ = c.nc.Close()
}

// Call sends req and decodes the reply into resp. ctx bounds the whole call;
// a call given up on leaves the connection usable.
func (c *Conn) Call(ctx context.Context, req Request, resp Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.next++
	corr := c.next
	c.pending[corr] = ch
	c.mu.Unlock()

	frame, err := Frame(EncodeRequest(corr, req))
	if err != nil {
		c.mu.Lock()
		delete(c.pending, corr)
		c.mu.Unlock()
		return err
	}
	c.wmu.Lock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	_ = c.nc.SetWriteDeadline(deadline)
	_, err = c.nc.Write(frame)
	c.wmu.Unlock()
	if err != nil {
		// A partial write desynchronises the stream: break the connection.
		_ = c.nc.Close()
		return fmt.Errorf("%w: write: %v", ErrClosed, err)
	}
	select {
	case body := <-ch:
		return DecodeResponse(body, resp)
	case <-c.done:
		select {
		case body := <-ch:
			return DecodeResponse(body, resp)
		default:
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	case <-ctx.Done():
		c.mu.Lock()
		if c.pending != nil {
			delete(c.pending, corr)
		}
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Close closes the connection and waits for its reader to stop.
func (c *Conn) Close() error {
	err := c.nc.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
