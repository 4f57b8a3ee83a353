package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// perServerTimeout bounds one DNS exchange, so a dead first resolver leaves
// time for the fallbacks within a request's dial.
const perServerTimeout = time.Second

// serverPenalty is how long a server that failed is asked only after the
// others: long enough that a dead region's DNS costs its clients one
// timeout, short enough that they return soon after it recovers.
const serverPenalty = 10 * time.Second

// resolver resolves names through the given DNS servers in order, caching
// each answer for its TTL the way a stub resolver with a cache does: a
// failover that changes the answer is seen once the old answer expires, and
// not before. Go's own resolver has no cache and vegeta's DNSCaching ignores
// the TTL and any custom resolver, hence this.
type resolver struct {
	servers []string
	udp     *dns.Client
	tcp     *dns.Client
	now     func() time.Time

	mu       sync.Mutex
	cache    map[string]answer
	badUntil map[string]time.Time // servers that failed lately go last
	flight   singleflight.Group
}

type answer struct {
	addrs   []netip.Addr
	expires time.Time
}

func newResolver(servers []string, timeout time.Duration) *resolver {
	t := min(timeout, perServerTimeout)
	return &resolver{
		servers:  servers,
		udp:      &dns.Client{Net: "udp", Timeout: t},
		tcp:      &dns.Client{Net: "tcp", Timeout: t},
		now:      time.Now,
		cache:    map[string]answer{},
		badUntil: map[string]time.Time{},
	}
}

// dialer wraps d so that a host name is resolved through r.
func (r *resolver) dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return d.DialContext(ctx, network, addr)
		}
		addrs, err := r.lookup(ctx, host)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		var errs []error
		for _, a := range addrs {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
}

// lookup returns host's IPv4 addresses, from the cache while they are fresh.
// Concurrent misses for one name share one query. A failure is returned as
// a *net.DNSError, which Classify files under KindDNS.
func (r *resolver) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	name := dns.CanonicalName(host)
	r.mu.Lock()
	a, ok := r.cache[name]
	r.mu.Unlock()
	if ok && r.now().Before(a.expires) {
		return a.addrs, nil
	}
	v, err, _ := r.flight.Do(name, func() (any, error) {
		// Shared by every caller waiting on this name, so no one caller's
		// cancellation may fail the others.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(len(r.servers))*r.udp.Timeout)
		defer cancel()
		addrs, ttl, err := r.query(qctx, name)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.cache[name] = answer{addrs: addrs, expires: r.now().Add(ttl)}
		r.mu.Unlock()
		return addrs, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]netip.Addr), nil
}

// query asks each server in turn until one gives a definitive answer: a
// server that cannot be reached or fails (SERVFAIL, REFUSED) passes the
// question on; NXDOMAIN or an answer without addresses is final.
func (r *resolver) query(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	var last error = errors.New("no resolver")
	for _, server := range r.order() {
		in, _, err := r.udp.ExchangeContext(ctx, m, server)
		if err == nil && in.Truncated {
			in, _, err = r.tcp.ExchangeContext(ctx, m, server)
		}
		if err != nil {
			r.failed(server)
			last = &net.DNSError{Err: err.Error(), Name: name, Server: server, IsTimeout: isTimeout(err)}
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, 0, &net.DNSError{Err: "no such host", Name: name, Server: server, IsNotFound: true}
		default:
			r.failed(server)
			last = &net.DNSError{Err: "server misbehaving: " + dns.RcodeToString[in.Rcode], Name: name, Server: server}
			continue
		}
		var addrs []netip.Addr
		ttl := uint32(0)
		for _, rr := range in.Answer {
			a, ok := rr.(*dns.A)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
				if len(addrs) == 0 || a.Hdr.Ttl < ttl {
					ttl = a.Hdr.Ttl
				}
				addrs = append(addrs, ip)
			}
		}
		if len(addrs) == 0 {
			return nil, 0, &net.DNSError{Err: "no such host", Name: name, Server: server, IsNotFound: true}
		}
		return addrs, time.Duration(ttl) * time.Second, nil
	}
	return nil, 0, last
}

// recycleEvery is how often recycle looks for expired answers.
const recycleEvery = 250 * time.Millisecond

// recycle closes tr's idle connections whenever a cached answer expires,
// until ctx ends. Without it a keep-alive connection outlives its DNS
// answer indefinitely: a client moved away from a dead region would never
// come back, and one behind a live but failed-over name would never move.
// Busy connections are closed once they go idle, so no request fails.
func (r *resolver) recycle(ctx context.Context, tr interface{ CloseIdleConnections() }) {
	t := time.NewTicker(recycleEvery)
	defer t.Stop()
	last := r.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.now()
		if r.expiredBetween(last, now) {
			tr.CloseIdleConnections()
		}
		last = now
	}
}

// expiredBetween says whether a cached answer expired in (from, to].
func (r *resolver) expiredBetween(from, to time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.cache {
		if a.expires.After(from) && !a.expires.After(to) {
			return true
		}
	}
	return false
}

// order is the servers to ask, in the configured order except that a server
// which failed within serverPenalty goes last: a stub resolver that kept
// asking a dead first server would add its timeout to every lookup.
func (r *resolver) order() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	out := make([]string, 0, len(r.servers))
	var bad []string
	for _, s := range r.servers {
		if until, ok := r.badUntil[s]; ok && now.Before(until) {
			bad = append(bad, s)
			continue
		}
		out = append(out, s)
	}
	return append(out, bad...)
}

func (r *resolver) failed(server string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.badUntil[server] = r.now().Add(serverPenalty)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
