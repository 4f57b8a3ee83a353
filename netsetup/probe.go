package netsetup

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// ProbeOptions bound one probe; every probe is finite in count and time.
type ProbeOptions struct {
	Count    int           // packets sent (default 100)
	Interval time.Duration // between sends (default 10ms)
	// Wait is how long replies are awaited after the last send (default 1s).
	Wait time.Duration
}

// ProbeResult is what one probe saw. Loss is counted per direction: the
// echo socket in TO's namespace counts what arrives, so a one-way partition
// shows as Arrived 0 with the other direction intact.
type ProbeResult struct {
	Sent, Arrived, Echoed int
	RTTs                  []time.Duration // sorted
}

// LossOut is the fraction of packets lost from FROM to TO.
func (r ProbeResult) LossOut() float64 { return frac(r.Sent-r.Arrived, r.Sent) }

// LossBack is the fraction of echoes lost from TO back to FROM.
func (r ProbeResult) LossBack() float64 { return frac(r.Arrived-r.Echoed, r.Arrived) }

// Percentile returns the q-quantile (0..1) of the RTTs; 0 with none.
func (r ProbeResult) Percentile(q float64) time.Duration {
	if len(r.RTTs) == 0 {
		return 0
	}
	i := int(q * float64(len(r.RTTs)-1))
	return r.RTTs[i]
}

func frac(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

const probeSize = 12 // sequence number and send time

// Probe measures RTT and loss from node from to node to with UDP echoes:
// the controller opens an echo socket inside to's namespace and a client
// socket inside from's, so packets take exactly the path the nodes' own
// traffic takes (routes, wan, drop rules, caps) and no tool is needed in
// either image.
func (n *Net) Probe(ctx context.Context, from, to string, o ProbeOptions) (ProbeResult, error) {
	o.Count = cmp.Or(o.Count, 100)
	o.Interval = cmp.Or(o.Interval, 10*time.Millisecond)
	o.Wait = cmp.Or(o.Wait, time.Second)
	dst, ok := n.nodes[to]
	if !ok || !dst.IP.IsValid() {
		return ProbeResult{}, fmt.Errorf("probe: no node %q with an address in run %s", to, n.runID)
	}
	toPid, err := n.Pid(ctx, to)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("probe: %w", err)
	}
	fromPid, err := n.Pid(ctx, from)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("probe: %w", err)
	}
	var srv *net.UDPConn
	if err := InNamespace(toPid, func() (err error) {
		srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: dst.IP.AsSlice()})
		return err
	}); err != nil {
		return ProbeResult{}, fmt.Errorf("probe: echo socket in %s: %w", to, err)
	}
	defer srv.Close()
	var cli *net.UDPConn
	if err := InNamespace(fromPid, func() (err error) {
		cli, err = net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		return ProbeResult{}, fmt.Errorf("probe: socket in %s: %w", from, err)
	}
	defer cli.Close()

	var wg sync.WaitGroup
	var arrived int
	wg.Add(1)
	go func() { // echo until the socket is closed
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			k, addr, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if k == probeSize {
				arrived++
				_, _ = srv.WriteToUDP(buf[:k], addr)
			}
		}
	}()
	base := time.Now()
	seen := make([]bool, o.Count)
	var rtts []time.Duration
	wg.Add(1)
	go func() { // collect echoes until the socket is closed
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			k, err := cli.Read(buf)
			if err != nil {
				return
			}
			now := time.Since(base)
			seq := binary.BigEndian.Uint32(buf)
			if k != probeSize || int(seq) >= o.Count || seen[seq] {
				continue
			}
			seen[seq] = true
			rtts = append(rtts, now-time.Duration(binary.BigEndian.Uint64(buf[4:])))
		}
	}()

	res := ProbeResult{}
	var sendErr error
	tick := time.NewTicker(o.Interval)
	pkt := make([]byte, probeSize)
	for i := 0; i < o.Count && sendErr == nil; i++ {
		binary.BigEndian.PutUint32(pkt, uint32(i))
		binary.BigEndian.PutUint64(pkt[4:], uint64(time.Since(base)))
		// A partition inside the namespace makes sends fail with EPERM;
		// that packet is lost like any other.
		if _, err := cli.Write(pkt); err == nil || !errors.Is(err, net.ErrClosed) {
			res.Sent++
		}
		select {
		case <-ctx.Done():
			sendErr = ctx.Err()
		case <-tick.C:
		}
	}
	tick.Stop()
	if sendErr == nil {
		select {
		case <-ctx.Done():
			sendErr = ctx.Err()
		case <-time.After(o.Wait):
		}
	}
	srv.Close()
	cli.Close()
	wg.Wait()
	res.Arrived = arrived
	res.Echoed = len(rtts)
	res.RTTs = rtts
	slices.Sort(res.RTTs)
	return res, sendErr
}
