package wan

import (
	"context"
	"encoding/binary"
	"io"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testRegions = []Region{
	{Name: "a", Prefix: netip.MustParsePrefix("10.1.0.0/24")},
	{Name: "b", Prefix: netip.MustParsePrefix("10.2.0.0/24")},
}

// pipeDev is an in-memory TUN: the test writes packets to in, the engine's
// writes come out on out with the time they were written.
type pipeDev struct {
	in     chan []byte
	out    chan written
	closed chan struct{}
	once   sync.Once
}

type written struct {
	pkt []byte
	at  time.Time
}

func newPipeDev() *pipeDev {
	return &pipeDev{in: make(chan []byte, 1024), out: make(chan written, 1<<16), closed: make(chan struct{})}
}

func (d *pipeDev) Read(b []byte) (int, error) {
	select {
	case p := <-d.in:
		return copy(b, p), nil
	case <-d.closed:
		return 0, io.ErrClosedPipe
	}
}

func (d *pipeDev) Write(b []byte) (int, error) {
	select {
	case d.out <- written{pkt: append([]byte(nil), b...), at: time.Now()}:
		return len(b), nil
	case <-d.closed:
		return 0, io.ErrClosedPipe
	}
}

func (d *pipeDev) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

// numbered returns a packet carrying seq in its payload.
func numbered(src, dst string, seq uint32) []byte {
	p := ipv4Packet(src, dst, 100)
	binary.BigEndian.PutUint32(p[28:], seq)
	return p
}

func seqOf(p []byte) uint32 { return binary.BigEndian.Uint32(p[28:]) }

func startEngine(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func newTestEngine(t *testing.T, links []LinkSpec, opts ...Option) (*Engine, *pipeDev) {
	t.Helper()
	dev := newPipeDev()
	e, err := NewEngine(dev, testRegions, opts...)
	require.NoError(t, err)
	require.NoError(t, e.SetLinks(links))
	return e, dev
}

func TestDecide(t *testing.T) {
	ms := int64(time.Millisecond)
	pkt := ipv4Packet("10.1.0.1", "10.2.0.1", 1500)
	tests := []struct {
		name    string
		link    Link
		arrive  []int64 // ns
		release []int64 // -1 = dropped for queue
	}{
		{"delay only", Link{Delay: 35 * time.Millisecond}, []int64{0, 5 * ms}, []int64{35 * ms, 40 * ms}},
		// 1500 B at 12 Mbit/s is 1 ms on the wire.
		{"bandwidth paces back to back", Link{BandwidthBps: 12e6}, []int64{0, 0, 0}, []int64{ms, 2 * ms, 3 * ms}},
		{"bandwidth idle link", Link{BandwidthBps: 12e6}, []int64{0, 10 * ms}, []int64{ms, 11 * ms}},
		{"bandwidth then delay", Link{BandwidthBps: 12e6, Delay: 10 * time.Millisecond}, []int64{0, 0}, []int64{11 * ms, 12 * ms}},
		// 150 back-to-back packets need 150 ms; the queue holds 100 ms.
		{"queue overflow drops", Link{BandwidthBps: 12e6}, make([]int64, 103), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newTestEngine(t, []LinkSpec{{From: "a", To: "b", Link: tt.link}})
			cfg := e.cfg.Load()
			var got []int64
			for _, at := range tt.arrive {
				_, reason, rel := e.decide(cfg, pkt, at)
				if reason == dropQueue {
					got = append(got, -1)
					continue
				}
				require.Equal(t, keep, reason)
				got = append(got, rel)
			}
			if tt.release != nil {
				assert.Equal(t, tt.release, got)
				return
			}
			assert.Equal(t, int64(101*ms), got[100], "last packet that fits the 100ms queue")
			assert.Equal(t, []int64{-1, -1}, got[101:])
		})
	}
}

func TestDecideClassification(t *testing.T) {
	e, _ := newTestEngine(t, []LinkSpec{{From: "a", To: "b", Link: Link{Delay: time.Second}}})
	_, err := e.AddPartition([]netip.Prefix{netip.MustParsePrefix("10.2.0.9/32")}, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")})
	require.NoError(t, err)
	tests := []struct {
		name      string
		pkt       []byte
		pair      Pair
		reason    dropReason
		releaseAt int64
	}{
		{"a to b delayed", ipv4Packet("10.1.0.1", "10.2.0.1", 60), Pair{"a", "b"}, keep, int64(time.Second) + 7},
		{"b to a has no link", ipv4Packet("10.2.0.1", "10.1.0.1", 60), Pair{"b", "a"}, keep, 7},
		{"intra-region passes", ipv4Packet("10.1.0.1", "10.1.0.2", 60), Pair{"a", "a"}, keep, 7},
		{"outside regions passes", ipv4Packet("192.0.2.1", "10.2.0.1", 60), Pair{"", "b"}, keep, 7},
		{"non-IPv4 dropped", []byte{0x60, 1, 2, 3}, Pair{"", ""}, dropNotIPv4, 0},
		{"partitioned host", ipv4Packet("10.2.0.9", "10.1.0.1", 60), Pair{"b", "a"}, dropPartition, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, reason, rel := e.decide(e.cfg.Load(), tt.pkt, 7)
			assert.Equal(t, tt.pair, st.pair)
			assert.Equal(t, tt.reason, reason)
			assert.Equal(t, tt.releaseAt, rel)
		})
	}
}

func TestDecideJitterKeepsLinkFIFO(t *testing.T) {
	e, _ := newTestEngine(t, []LinkSpec{{From: "a", To: "b", Link: Link{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}}})
	cfg := e.cfg.Load()
	pkt := ipv4Packet("10.1.0.1", "10.2.0.1", 100)
	var last int64
	spread := map[int64]bool{}
	for i := range 2000 {
		at := int64(i) * int64(3*time.Millisecond) // closer than the jitter range, so clamping happens
		_, reason, rel := e.decide(cfg, pkt, at)
		require.Equal(t, keep, reason)
		require.GreaterOrEqual(t, rel, last, "packet %d overtakes its predecessor", i)
		require.GreaterOrEqual(t, rel, at+int64(5*time.Millisecond))
		spread[(rel-at)/int64(time.Millisecond)] = true
		last = rel
	}
	assert.Greater(t, len(spread), 5, "jitter should vary the delay")
}

func TestDecideLossIsSeeded(t *testing.T) {
	pattern := func(seed uint64) []bool {
		e, _ := newTestEngine(t, []LinkSpec{{From: "a", To: "b", Link: Link{Loss: 0.1}}}, WithSeed(seed))
		cfg := e.cfg.Load()
		pkt := ipv4Packet("10.1.0.1", "10.2.0.1", 100)
		out := make([]bool, 20000)
		for i := range out {
			_, reason, _ := e.decide(cfg, pkt, 0)
			out[i] = reason == dropLoss
		}
		return out
	}
	a := pattern(42)
	dropped := 0
	for _, d := range a {
		if d {
			dropped++
		}
	}
	assert.InDelta(t, 0.1, float64(dropped)/float64(len(a)), 0.01)
	assert.Equal(t, a, pattern(42), "same seed, same drops")
	assert.NotEqual(t, a, pattern(43))
}

func TestEngineReleasesInDelayOrder(t *testing.T) {
	e, dev := newTestEngine(t, []LinkSpec{
		{From: "a", To: "b", Link: Link{Delay: 60 * time.Millisecond}},
		{From: "b", To: "a", Link: Link{Delay: 20 * time.Millisecond}},
	})
	startEngine(t, e)
	sent := map[uint32]time.Time{}
	want := map[uint32]time.Duration{}
	send := func(src, dst string, seq uint32, d time.Duration) {
		sent[seq], want[seq] = time.Now(), d
		dev.in <- numbered(src, dst, seq)
	}
	send("10.1.0.1", "10.2.0.1", 1, 60*time.Millisecond)
	send("10.2.0.1", "10.1.0.1", 2, 20*time.Millisecond)
	send("10.1.0.1", "10.1.0.2", 3, 0)
	var order []uint32
	for range 3 {
		select {
		case w := <-dev.out:
			seq := seqOf(w.pkt)
			order = append(order, seq)
			assert.GreaterOrEqual(t, w.at.Sub(sent[seq]), want[seq], "packet %d released early", seq)
		case <-time.After(10 * time.Second):
			t.Fatal("packets not released")
		}
	}
	assert.Equal(t, []uint32{3, 2, 1}, order)
	stats := e.Stats()
	require.Len(t, stats, 3)
	for _, s := range stats {
		assert.Equal(t, uint64(1), s.ForwardedPackets, s.From+"->"+s.To)
		assert.Equal(t, uint64(100), s.ForwardedBytes)
	}
}

func TestEngineKeepsFIFOUnderJitter(t *testing.T) {
	e, dev := newTestEngine(t, []LinkSpec{{From: "a", To: "b", Link: Link{Delay: 3 * time.Millisecond, Jitter: 3 * time.Millisecond}}})
	startEngine(t, e)
	const n = 500
	go func() {
		for i := range uint32(n) {
			dev.in <- numbered("10.1.0.1", "10.2.0.1", i)
		}
	}()
	for i := range uint32(n) {
		select {
		case w := <-dev.out:
			require.Equal(t, i, seqOf(w.pkt))
		case <-time.After(10 * time.Second):
			t.Fatalf("packet %d not released", i)
		}
	}
}

func TestEnginePartitions(t *testing.T) {
	e, dev := newTestEngine(t, nil)
	startEngine(t, e)
	pa, pb := netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.2.0.0/24")
	id1, err := e.AddPartition([]netip.Prefix{pa}, []netip.Prefix{pb})
	require.NoError(t, err)
	id2, err := e.AddPartition([]netip.Prefix{pb}, []netip.Prefix{pa})
	require.NoError(t, err)
	assert.NotEqual(t, id1, id2)
	_, err = e.AddPartition(nil, []netip.Prefix{pa})
	require.Error(t, err)
	require.Len(t, e.Partitions(), 2)

	// roundTrip sends a->b then b->a and a marker that is never partitioned,
	// and returns which of the first two came out before the marker.
	var seq uint32
	roundTrip := func() (ab, ba bool) {
		seq += 3
		dev.in <- numbered("10.1.0.1", "10.2.0.1", seq)
		dev.in <- numbered("10.2.0.1", "10.1.0.1", seq+1)
		dev.in <- numbered("10.1.0.1", "10.1.0.2", seq+2)
		for {
			select {
			case w := <-dev.out:
				switch seqOf(w.pkt) {
				case seq:
					ab = true
				case seq + 1:
					ba = true
				case seq + 2:
					return ab, ba
				}
			case <-time.After(10 * time.Second):
				t.Fatal("marker not released")
			}
		}
	}
	ab, ba := roundTrip()
	assert.False(t, ab)
	assert.False(t, ba)

	require.True(t, e.RemovePartition(id1))
	require.False(t, e.RemovePartition(id1))
	ab, ba = roundTrip()
	assert.True(t, ab, "one-way partition b->a must let a->b through")
	assert.False(t, ba)

	e.HealAll()
	assert.Empty(t, e.Partitions())
	ab, ba = roundTrip()
	assert.True(t, ab)
	assert.True(t, ba)

	var partDrops uint64
	for _, s := range e.Stats() {
		partDrops += s.PartitionDrops
	}
	assert.Equal(t, uint64(3), partDrops)
}

// TestEngineConfigSwapDuringTraffic changes links and partitions while
// packets flow; run with -race. Every packet must be forwarded or counted
// as dropped, none lost or duplicated by a swap.
func TestEngineConfigSwapDuringTraffic(t *testing.T) {
	e, dev := newTestEngine(t, nil)
	startEngine(t, e)
	const n = 3000
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pa := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}
		pb := []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			d := time.Duration(i%3) * time.Millisecond
			assert.NoError(t, e.SetLinks([]LinkSpec{{From: "a", To: "b", Link: Link{Delay: d, Jitter: d / 2, Loss: 0.05}}}))
			id, err := e.AddPartition(pa, pb)
			assert.NoError(t, err)
			assert.True(t, e.RemovePartition(id))
			_ = e.Stats()
		}
	}()
	go func() {
		for i := range uint32(n) {
			dev.in <- numbered("10.1.0.1", "10.2.0.1", i)
		}
	}()
	total := func() (fwd, drop uint64) {
		for _, s := range e.Stats() {
			fwd += s.ForwardedPackets
			drop += s.DroppedPackets
		}
		return
	}
	got := map[uint32]bool{}
	deadline := time.After(20 * time.Second)
	for {
		fwd, drop := total()
		if fwd+drop == n && len(got) == int(fwd) {
			break
		}
		select {
		case w := <-dev.out:
			seq := seqOf(w.pkt)
			require.False(t, got[seq], "duplicate %d", seq)
			got[seq] = true
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("accounted %d of %d", len(got), n)
		}
	}
	close(stop)
	wg.Wait()
	fwd, drop := total()
	assert.Equal(t, uint64(n), fwd+drop)
	assert.Positive(t, drop)
}

func TestSetLinksRejectsBadInput(t *testing.T) {
	e, _ := newTestEngine(t, nil)
	tests := []struct {
		name  string
		links []LinkSpec
	}{
		{"unknown region", []LinkSpec{{From: "a", To: "zz"}}},
		{"twice", []LinkSpec{{From: "a", To: "b"}, {From: "a", To: "b"}}},
		{"bad loss", []LinkSpec{{From: "a", To: "b", Link: Link{Loss: 2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, e.SetLinks(tt.links))
		})
	}
	_, err := NewEngine(newPipeDev(), []Region{testRegions[0], {Name: "c", Prefix: netip.MustParsePrefix("10.1.0.128/25")}})
	require.Error(t, err, "overlapping regions")
}

func BenchmarkEngineZeroDelay(b *testing.B) {
	dev := newPipeDev()
	e, err := NewEngine(dev, testRegions)
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	pkt := ipv4Packet("10.1.0.1", "10.2.0.1", 1400)
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	go func() {
		for range b.N {
			dev.in <- pkt
		}
	}()
	for range b.N {
		<-dev.out
	}
	b.StopTimer()
	cancel()
	require.NoError(b, <-done)
}

func BenchmarkDecide(b *testing.B) {
	e, err := NewEngine(newPipeDev(), testRegions)
	require.NoError(b, err)
	require.NoError(b, e.SetLinks([]LinkSpec{{From: "a", To: "b", Link: Link{Delay: time.Millisecond, Jitter: 100 * time.Microsecond, Loss: 0.01, BandwidthBps: 1e12}}}))
	cfg := e.cfg.Load()
	pkt := ipv4Packet("10.1.0.1", "10.2.0.1", 1400)
	b.ResetTimer()
	for i := range b.N {
		e.decide(cfg, pkt, int64(i)*1000)
	}
}

func TestEngineHeaderAndLinksHook(t *testing.T) {
	var hooked [][]LinkSpec
	hookErr := error(nil)
	dev := newPipeDev()
	e, err := NewEngine(dev, testRegions, WithHeaderLen(10), WithLinksHook(func(s []LinkSpec) error {
		hooked = append(hooked, s)
		return hookErr
	}))
	require.NoError(t, err)
	links := []LinkSpec{{From: "a", To: "b", Link: Link{Delay: time.Millisecond}}}
	require.NoError(t, e.SetLinks(links))
	hookErr = io.ErrUnexpectedEOF
	require.ErrorIs(t, e.SetLinks(nil), io.ErrUnexpectedEOF)
	assert.Equal(t, [][]LinkSpec{links, nil}, hooked)
	assert.Equal(t, links, e.Links(), "a rejected set changes nothing")

	startEngine(t, e)
	hdr := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	pkt := append(slices.Clone(hdr), numbered("10.1.0.1", "10.2.0.1", 9)...)
	dev.in <- pkt
	dev.in <- hdr[:5] // shorter than the header: dropped, not a crash
	select {
	case w := <-dev.out:
		assert.Equal(t, pkt, w.pkt, "header passed through untouched")
	case <-time.After(10 * time.Second):
		t.Fatal("packet not released")
	}
	require.Eventually(t, func() bool { return len(e.Stats()) == 2 }, 10*time.Second, time.Millisecond)
	for _, s := range e.Stats() {
		if s.From == "a" {
			assert.Equal(t, uint64(100), s.ForwardedBytes, "header not counted")
		} else {
			assert.Equal(t, uint64(1), s.DroppedPackets)
			assert.Zero(t, s.DroppedBytes)
		}
	}
}
