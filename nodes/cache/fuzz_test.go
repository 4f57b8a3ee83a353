package cache

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var errPeerDone = errors.New("peer done")

// fuzzPeer is the client side of a fuzzed connection: it sends the input,
// then forever a resync (enough line ends to finish any data block) and a
// version command, and hangs up once the version reply arrives.
type fuzzPeer struct {
	input, cycle []byte
	pos          int
	read         int64
	out          bytes.Buffer
	done         bool
}

var fuzzVersion = []byte("VERSION " + Version + "\r\n")

func (p *fuzzPeer) Read(b []byte) (int, error) {
	if p.done || p.read > 4<<30 {
		return 0, io.EOF
	}
	if len(p.input) > 0 {
		n := copy(b, p.input)
		p.input = p.input[n:]
		return n, nil
	}
	n := 0
	for n < len(b) {
		c := copy(b[n:], p.cycle[p.pos:])
		n += c
		p.pos = (p.pos + c) % len(p.cycle)
	}
	p.read += int64(n)
	return n, nil
}

func (p *fuzzPeer) Write(b []byte) (int, error) {
	if p.done {
		return 0, errPeerDone
	}
	from := max(0, p.out.Len()-len(fuzzVersion))
	p.out.Write(b)
	// The server flushes only when its input runs dry, which this peer's
	// never does, so the reply arrives inside a larger write.
	p.done = bytes.Contains(p.out.Bytes()[from:], fuzzVersion)
	return len(b), nil
}

// FuzzCommands feeds arbitrary bytes to a connection. The server must not
// panic, must keep its memory bound and, unless the input quit or sent an
// overlong line, must go on answering commands afterwards.
func FuzzCommands(f *testing.F) {
	for _, s := range []string{
		"set k 0 0 3\r\nabc\r\nget k\r\n",
		"gets a b c\r\ncas a 0 0 1 1\r\nx\r\n",
		"incr n 18446744073709551615\r\ndecr n 1 noreply\r\n",
		"set k 0 0 5\r\nab",
		"set k 0 0 100\r\n",
		"delete k 0 noreply\r\ntouch k -1\r\ngat 5 k\r\n",
		"flush_all 10\r\nstats\r\nversion\r\n",
		"append k 0 0 99999999999\r\n",
		"quit\r\n",
		"\r\n\n\r ",
	} {
		f.Add([]byte(s))
	}
	const maxItem = 64
	f.Fuzz(func(t *testing.T, input []byte) {
		store, err := NewStore(WithMemory(8<<10), WithMaxItemSize(maxItem))
		require.NoError(t, err)
		p := &fuzzPeer{
			input: bytes.Clone(input),
			cycle: []byte(strings.Repeat("\r\n", maxItem+2) + "version\r\n"),
		}
		newConn(NewServer(store), p).serve()

		out := p.out.Bytes()
		closed := bytes.Contains(input, []byte("quit")) || bytes.HasSuffix(out, []byte(respLineTooLong))
		require.True(t, p.done || closed, "no answer after input; output %q", out)
		st := store.Stats()
		require.LessOrEqual(t, st.Bytes, st.LimitMaxBytes)
		require.Equal(t, st.CmdGet, st.GetHits+st.GetMisses)
	})
}
