package protocol

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
)

// Handler answers one request. It must return once ctx ends.
type Handler func(ctx context.Context, req Request) Message

// Serve accepts connections on ln and answers requests with h, each request
// in its own goroutine (a produce waiting for replication must not hold up
// fetches on the same connection). It returns when ctx ends or ln fails,
// after every connection and handler has stopped.
func Serve(ctx context.Context, ln net.Listener, h Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	var err error
	for {
		var nc net.Conn
		nc, err = ln.Accept()
		if err != nil {
			break
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			_ = nc.Close()
			break
		}
		conns[nc] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(ctx, nc, h)
			mu.Lock()
			delete(conns, nc)
			mu.Unlock()
		}()
	}
	cancel()
	wg.Wait()
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func serveConn(ctx context.Context, nc net.Conn, h Handler) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer nc.Close()
	var wmu sync.Mutex
	reply := func(corr uint32, resp Message) {
		frame, err := Frame(EncodeResponse(corr, resp))
		if err != nil {
			// Too big to send (a fetch is bounded well below this): answer
			// with the error instead.
			frame, _ = Frame(EncodeResponse(corr, &ErrResponse{Err: InvalidRequest, Message: err.Error()}))
		}
		wmu.Lock()
		defer wmu.Unlock()
		if _, err := nc.Write(frame); err != nil {
			_ = nc.Close() // the reader then fails and the connection ends
		}
	}
	r := bufio.NewReaderSize(nc, 64<<10)
	for {
		frame, err := ReadFrame(r, nil)
		if err != nil {
			return
		}
		corr, req, err := DecodeRequest(frame)
		if err != nil {
			if req == nil && len(frame) < requestHeader {
				return // not even a header: the stream is not ours
			}
			reply(corr, &ErrResponse{Err: CodeOf(err), Message: err.Error()})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply(corr, h(ctx, req))
		}()
	}
}
