package netem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Direction says which packets of a node a drop rule catches.
type Direction int

const (
	// Outbound drops what the node sends to the peer.
	Outbound Direction = 1 << iota
	// Inbound drops what the node receives from the peer.
	Inbound
	// Both cuts the node and the peer off from each other.
	Both = Outbound | Inbound
)

// Rule is one drop rule faultline installed in a namespace. A zero Peer
// means every peer: the node is isolated from everything but loopback.
type Rule struct {
	Dir  Direction
	Peer netip.Prefix
}

// tableName is the only nftables table faultline touches; dropping whole
// packets in a filter hook looks to peers like a cut cable (they time out),
// unlike unreachable routes, which fail fast with a local error.
const tableName = "faultline"

const commentPrefix = "faultline:"

func (r Rule) comment() string {
	dir := "out"
	if r.Dir == Inbound {
		dir = "in"
	}
	peer := "*"
	if r.Peer.IsValid() {
		peer = r.Peer.String()
	}
	return commentPrefix + dir + ":" + peer
}

func (r Rule) String() string { return strings.TrimPrefix(r.comment(), commentPrefix) }

// parseComment reverses Rule.comment.
func parseComment(s string) (Rule, error) {
	rest, ok := strings.CutPrefix(s, commentPrefix)
	dir, peer, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return Rule{}, fmt.Errorf("not a faultline rule comment: %q", s)
	}
	var r Rule
	switch dir {
	case "out":
		r.Dir = Outbound
	case "in":
		r.Dir = Inbound
	default:
		return Rule{}, fmt.Errorf("bad direction in %q", s)
	}
	if peer != "*" {
		p, err := netip.ParsePrefix(peer)
		if err != nil || !p.Addr().Is4() || p != p.Masked() {
			return Rule{}, fmt.Errorf("bad peer in %q", s)
		}
		r.Peer = p
	}
	return r, nil
}

// Block drops traffic between the node with init pid and peer (an IPv4
// address or prefix) in the given directions. Blocking twice is harmless.
func Block(ctx context.Context, pid int, peer netip.Prefix, dir Direction) error {
	if !peer.IsValid() || !peer.Addr().Is4() {
		return fmt.Errorf("block in pid %d: peer %s is not an IPv4 prefix", pid, peer)
	}
	return addRules(ctx, pid, peer.Masked(), dir)
}

// Isolate drops every packet the node sends or receives except on loopback.
func Isolate(ctx context.Context, pid int) error {
	return addRules(ctx, pid, netip.Prefix{}, Both)
}

// Unblock removes the rules Block (or Isolate, with a zero peer) added for
// peer in the given directions.
func Unblock(ctx context.Context, pid int, peer netip.Prefix, dir Direction) error {
	return withConn(ctx, pid, func(c *nftables.Conn) error {
		rules, err := listRules(c)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if r.Dir&dir != 0 && r.Peer == peer.Masked() {
				if err := c.DelRule(r.raw); err != nil {
					return fmt.Errorf("delete rule %s: %w", r.Rule, err)
				}
			}
		}
		return c.Flush()
	})
}

// Heal removes everything faultline installed in the namespace of pid.
func Heal(ctx context.Context, pid int) error {
	return withConn(ctx, pid, func(c *nftables.Conn) error {
		t, err := c.ListTableOfFamily(tableName, nftables.TableFamilyIPv4)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return fmt.Errorf("find table %s: %w", tableName, err)
		}
		c.DelTable(t)
		return c.Flush()
	})
}

// Rules lists the drop rules faultline has in the namespace of pid.
func Rules(ctx context.Context, pid int) ([]Rule, error) {
	var out []Rule
	err := withConn(ctx, pid, func(c *nftables.Conn) error {
		rules, err := listRules(c)
		for _, r := range rules {
			out = append(out, r.Rule)
		}
		return err
	})
	return out, err
}

type installed struct {
	Rule
	raw *nftables.Rule
}

var (
	table  = &nftables.Table{Name: tableName, Family: nftables.TableFamilyIPv4}
	chains = map[Direction]*nftables.Chain{
		Inbound:  {Name: "input", Table: table, Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter},
		Outbound: {Name: "output", Table: table, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter},
	}
)

func listRules(c *nftables.Conn) ([]installed, error) {
	if _, err := c.ListTableOfFamily(tableName, nftables.TableFamilyIPv4); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("find table %s: %w", tableName, err)
	}
	var out []installed
	for _, dir := range []Direction{Outbound, Inbound} {
		raw, err := c.GetRules(table, chains[dir])
		if err != nil {
			return nil, fmt.Errorf("list %s rules: %w", chains[dir].Name, err)
		}
		for _, r := range raw {
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			rule, err := parseComment(comment)
			if err != nil {
				return nil, fmt.Errorf("table %s holds a rule faultline did not write: %w", tableName, err)
			}
			out = append(out, installed{Rule: rule, raw: r})
		}
	}
	return out, nil
}

func addRules(ctx context.Context, pid int, peer netip.Prefix, dir Direction) error {
	return withConn(ctx, pid, func(c *nftables.Conn) error {
		existing, err := listRules(c)
		if err != nil {
			return err
		}
		c.AddTable(table)
		for _, d := range []Direction{Outbound, Inbound} {
			c.AddChain(chains[d])
		}
		for _, d := range []Direction{Outbound, Inbound} {
			want := Rule{Dir: d, Peer: peer}
			if dir&d == 0 || containsRule(existing, want) {
				continue
			}
			c.AddRule(&nftables.Rule{
				Table:    table,
				Chain:    chains[d],
				Exprs:    dropExprs(want),
				UserData: userdata.AppendString(nil, userdata.TypeComment, want.comment()),
			})
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("install drop rules in pid %d: %w", pid, err)
		}
		return nil
	})
}

func containsRule(rules []installed, r Rule) bool {
	for _, x := range rules {
		if x.Rule == r {
			return true
		}
	}
	return false
}

// dropExprs matches the peer's address (destination when outbound, source
// when inbound), or any interface but loopback when there is no peer.
func dropExprs(r Rule) []expr.Any {
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	if !r.Peer.IsValid() {
		key := expr.MetaKeyOIFNAME
		if r.Dir == Inbound {
			key = expr.MetaKeyIIFNAME
		}
		return []expr.Any{
			&expr.Meta{Key: key, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname("lo")},
			drop,
		}
	}
	offset := uint32(16) // IPv4 destination
	if r.Dir == Inbound {
		offset = 12 // IPv4 source
	}
	exprs := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if r.Peer.Bits() < 32 {
		exprs = append(exprs, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: net.CIDRMask(r.Peer.Bits(), 32), Xor: make([]byte, 4)})
	}
	return append(exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: r.Peer.Addr().AsSlice()}, drop)
}

func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func withConn(ctx context.Context, pid int, fn func(*nftables.Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("netns of pid %d: %w", pid, err)
	}
	defer ns.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("nftables in netns of pid %d: %w", pid, err)
	}
	defer c.CloseLasting()
	return fn(c)
}
