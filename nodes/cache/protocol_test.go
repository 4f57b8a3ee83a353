package cache

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// step sends raw bytes and expects exactly want back; reading exactly
// len(want) bytes means any stray output (say, a reply despite noreply)
// shows up as a mismatch in a later step.
type step struct{ send, want string }

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	// A guard against hangs, not a timing assertion.
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	return c
}

func runSteps(t *testing.T, c net.Conn, steps []step) {
	t.Helper()
	for i, s := range steps {
		_, err := io.WriteString(c, s.send)
		require.NoError(t, err, "step %d", i)
		got := make([]byte, len(s.want))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err, "step %d %q", i, s.send)
		require.Equal(t, s.want, string(got), "step %d %q", i, s.send)
	}
}

func TestProtocol(t *testing.T) {
	long := strings.Repeat("k", 251)
	tests := []struct {
		name  string
		opts  []Option
		steps []step
	}{
		{"set then get", nil, []step{
			{"set k 5 0 3\r\nabc\r\n", "STORED\r\n"},
			{"get k\r\n", "VALUE k 5 3\r\nabc\r\nEND\r\n"},
		}},
		{"get miss", nil, []step{{"get nope\r\n", "END\r\n"}}},
		{"multi get skips misses", nil, []step{
			{"set a 1 0 1\r\nA\r\n", "STORED\r\n"},
			{"set b 2 0 2\r\nBB\r\n", "STORED\r\n"},
			{"get a x b\r\n", "VALUE a 1 1\r\nA\r\nVALUE b 2 2\r\nBB\r\nEND\r\n"},
		}},
		{"gets shows cas unique", nil, []step{
			{"set a 0 0 1\r\nA\r\n", "STORED\r\n"},
			{"set b 0 0 1\r\nB\r\n", "STORED\r\n"},
			{"gets a b\r\n", "VALUE a 0 1 1\r\nA\r\nVALUE b 0 1 2\r\nB\r\nEND\r\n"},
		}},
		{"empty value and max flags", nil, []step{
			{"set e 4294967295 0 0\r\n\r\n", "STORED\r\n"},
			{"get e\r\n", "VALUE e 4294967295 0\r\n\r\nEND\r\n"},
		}},
		{"bare newlines", nil, []step{
			{"set k 0 0 1\nx\r\n", "STORED\r\n"},
			{"get k\n", "VALUE k 0 1\r\nx\r\nEND\r\n"},
		}},
		{"pipelined commands", nil, []step{
			{"set k 0 0 1\r\nx\r\nget k\r\ndelete k\r\nget k\r\n", "STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\nDELETED\r\nEND\r\n"},
		}},
		{"add", nil, []step{
			{"add k 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"add k 0 0 1\r\ny\r\n", "NOT_STORED\r\n"},
			{"get k\r\n", "VALUE k 0 1\r\nx\r\nEND\r\n"},
		}},
		{"replace", nil, []step{
			{"replace k 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
			{"set k 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"replace k 3 0 1\r\ny\r\n", "STORED\r\n"},
			{"get k\r\n", "VALUE k 3 1\r\ny\r\nEND\r\n"},
		}},
		{"append and prepend keep flags", nil, []step{
			{"append k 0 0 1\r\nx\r\n", "NOT_STORED\r\n"},
			{"set k 7 0 1\r\nb\r\n", "STORED\r\n"},
			{"append k 0 0 1\r\nc\r\n", "STORED\r\n"},
			{"prepend k 0 0 1\r\na\r\n", "STORED\r\n"},
			{"get k\r\n", "VALUE k 7 3\r\nabc\r\nEND\r\n"},
		}},
		{"cas", nil, []step{
			{"cas k 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n"},
			{"set k 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"cas k 0 0 1 99\r\ny\r\n", "EXISTS\r\n"},
			{"cas k 0 0 1 1\r\ny\r\n", "STORED\r\n"},
			{"cas k 0 0 1 1\r\nz\r\n", "EXISTS\r\n"},
			{"gets k\r\n", "VALUE k 0 1 2\r\ny\r\nEND\r\n"},
		}},
		{"delete", nil, []step{
			{"delete k\r\n", "NOT_FOUND\r\n"},
			{"set k 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"delete k 0\r\n", "DELETED\r\n"},
			{"delete k 1\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
			{"delete k 0 0\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
			{"delete\r\n", "ERROR\r\n"},
		}},
		{"incr and decr", nil, []step{
			{"incr n 1\r\n", "NOT_FOUND\r\n"},
			{"decr n 1\r\n", "NOT_FOUND\r\n"},
			{"set n 0 0 2\r\n10\r\n", "STORED\r\n"},
			{"incr n 5\r\n", "15\r\n"},
			{"decr n 100\r\n", "0\r\n"},
			{"incr n 18446744073709551615\r\n", "18446744073709551615\r\n"},
			{"incr n 2\r\n", "1\r\n"},
			{"get n\r\n", "VALUE n 0 1\r\n1\r\nEND\r\n"},
			{"incr n -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
			{"incr n 18446744073709551616\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"},
			{"set s 0 0 3\r\nabc\r\n", "STORED\r\n"},
			{"incr s 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
			{"incr n\r\n", "ERROR\r\n"},
		}},
		{"incr accepts space padding", nil, []step{
			{"set n 0 0 4\r\n9   \r\n", "STORED\r\n"},
			{"incr n 1\r\n", "10\r\n"},
		}},
		{"touch", nil, []step{
			{"touch k 10\r\n", "NOT_FOUND\r\n"},
			{"set k 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"touch k 10\r\n", "TOUCHED\r\n"},
			{"touch k ten\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
			{"touch k -1\r\n", "TOUCHED\r\n"},
			{"get k\r\n", "END\r\n"},
		}},
		{"gat and gats", nil, []step{
			{"set k 3 0 1\r\nx\r\n", "STORED\r\n"},
			{"gat 100 k miss\r\n", "VALUE k 3 1\r\nx\r\nEND\r\n"},
			{"gats 100 k\r\n", "VALUE k 3 1 1\r\nx\r\nEND\r\n"},
			{"gat soon k\r\n", "CLIENT_ERROR invalid exptime argument\r\n"},
			{"gat 100\r\n", "ERROR\r\n"},
		}},
		{"flush_all", nil, []step{
			{"set k 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"flush_all\r\n", "OK\r\n"},
			{"get k\r\n", "END\r\n"},
			{"flush_all 0\r\n", "OK\r\n"},
			{"flush_all soon\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"flush_all 1 2 3\r\n", "ERROR\r\n"},
		}},
		{"version", nil, []step{{"version\r\n", "VERSION " + Version + "\r\n"}}},
		{"noreply", nil, []step{
			{"set k 0 0 1 noreply\r\nx\r\n", ""},
			{"add k 0 0 1 noreply\r\ny\r\n", ""},
			{"replace k 0 0 1 noreply\r\nz\r\n", ""},
			{"append k 0 0 1 noreply\r\n1\r\n", ""},
			{"prepend k 0 0 1 noreply\r\n0\r\n", ""},
			{"cas k 0 0 1 999 noreply\r\nq\r\n", ""},
			{"get k\r\n", "VALUE k 0 3\r\n0z1\r\nEND\r\n"},
			{"set n 0 0 1 noreply\r\n5\r\n", ""},
			{"incr n 2 noreply\r\n", ""},
			{"decr n 1 noreply\r\n", ""},
			{"touch n 100 noreply\r\n", ""},
			{"get n\r\n", "VALUE n 0 1\r\n6\r\nEND\r\n"},
			{"delete n noreply\r\n", ""},
			{"delete n 0 noreply\r\n", ""},
			{"incr n 1 noreply\r\n", ""},
			{"flush_all noreply\r\n", ""},
			{"flush_all 0 noreply\r\n", ""},
			{"get k n\r\n", "END\r\n"},
		}},
		{"noreply still reports errors", nil, []step{
			{"set s 0 0 1 noreply\r\nx\r\n", ""},
			{"incr s 1 noreply\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
			{"set k 0 0 1 noreply\r\nxyz", "CLIENT_ERROR bad data chunk\r\n"},
		}},
		{"a trailing word other than noreply is ignored", nil, []step{
			{"set k 0 0 1 please\r\nx\r\n", "STORED\r\n"},
		}},
		{"negative exptime stores an expired item", nil, []step{
			{"set k 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"set k 0 -1 1\r\ny\r\n", "STORED\r\n"},
			{"get k\r\n", "END\r\n"},
		}},
		{"unknown and malformed commands", nil, []step{
			{"bogus\r\n", "ERROR\r\n"},
			{"\r\n", "ERROR\r\n"},
			{"GET k\r\n", "ERROR\r\n"},
			{"get\r\n", "ERROR\r\n"},
			{"set k 0 0\r\n", "ERROR\r\n"},
			{"cas k 0 0 1\r\n", "ERROR\r\n"},
			{"version now\r\n", "ERROR\r\n"},
			{"stats items\r\n", "ERROR\r\n"},
		}},
		{"bad storage line leaves data to be read as a command", nil, []step{
			{"set k abc 0 1\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"x\r\n", "ERROR\r\n"},
			{"set k 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"set k 4294967296 0 1\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"cas k 0 0 1 -5\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"set " + long + " 0 0 1\r\n", "CLIENT_ERROR bad command line format\r\n"},
		}},
		{"key too long", nil, []step{
			{"get a " + long + "\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"delete " + long + "\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"incr " + long + " 1\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"touch " + long + " 1\r\n", "CLIENT_ERROR bad command line format\r\n"},
			{"get " + long[:250] + "\r\n", "END\r\n"},
		}},
		{"bad data chunk", nil, []step{
			{"set k 0 0 3\r\nabcXY", "CLIENT_ERROR bad data chunk\r\n"},
			{"get k\r\n", "END\r\n"},
		}},
		{"too large is swallowed and drops the old value", []Option{WithMaxItemSize(10), WithMemory(4096)}, []step{
			{"set k 0 0 1\r\nx\r\n", "STORED\r\n"},
			{"set k 0 0 11\r\n01234567890\r\n", "SERVER_ERROR object too large for cache\r\n"},
			{"get k\r\n", "END\r\n"},
			{"set k 0 0 10\r\n0123456789\r\n", "STORED\r\n"},
			{"append k 0 0 1\r\nx\r\n", "SERVER_ERROR object too large for cache\r\n"},
			{"get k\r\n", "VALUE k 0 10\r\n0123456789\r\nEND\r\n"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startServer(t, tc.opts...)
			runSteps(t, dial(t, addr), tc.steps)
		})
	}
}

func TestProtocolClosesConnection(t *testing.T) {
	tests := []struct {
		name, send, want string
	}{
		{"quit", "quit\r\n", ""},
		{"quit after pipelined get", "get k\r\nquit\r\n", "END\r\n"},
		// Exactly the limit, so the server has read everything sent when it
		// closes and the close is a clean FIN rather than a reset.
		{"line too long", "get " + strings.Repeat("k", maxLineLen-4), "CLIENT_ERROR line too long\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startServer(t)
			c := dial(t, addr)
			_, err := io.WriteString(c, tc.send)
			require.NoError(t, err)
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
}

func TestStats(t *testing.T) {
	addr, _ := startServer(t)
	c := dial(t, addr)
	runSteps(t, c, []step{
		{"set a 0 0 2\r\nxx\r\n", "STORED\r\n"},
		{"get a b\r\n", "VALUE a 0 2\r\nxx\r\nEND\r\n"},
	})
	_, err := io.WriteString(c, "stats\r\n")
	require.NoError(t, err)
	stats := map[string]string{}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(line, "\r\n"), line)
		line = strings.TrimSuffix(line, "\r\n")
		if line == "END" {
			break
		}
		f := strings.Fields(line)
		require.Len(t, f, 3, line)
		require.Equal(t, "STAT", f[0])
		stats[f[1]] = f[2]
	}
	want := map[string]string{
		"curr_items": "1", "get_hits": "1", "get_misses": "1", "cmd_get": "2", "cmd_set": "1",
		"evictions": "0", "curr_connections": "1", "total_connections": "1", "version": Version,
		"bytes": strconv.Itoa(len("a") + len("xx") + entryOverhead), "limit_maxbytes": strconv.Itoa(64 << 20),
	}
	for k, v := range want {
		assert.Equal(t, v, stats[k], k)
	}
}

// chunkReader hands out at most n bytes per Read, so that bufio refills
// (and reuses) its buffer in the middle of a command.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

type readWriter struct {
	io.Reader
	io.Writer
}

// TestDataArrivingInPieces checks that a key survives its data block being
// read in small pieces, as it is from a slow network.
func TestDataArrivingInPieces(t *testing.T) {
	for _, chunk := range []int{1, 3, 7, 64, 4096} {
		t.Run(strconv.Itoa(chunk), func(t *testing.T) {
			store, err := NewStore(WithMemory(1<<20), WithMaxItemSize(32<<10))
			require.NoError(t, err)
			big := strings.Repeat("v", 20000)
			script := "set key-number-one 1 0 20\r\n01234567890123456789\r\n" +
				"set key-number-two 2 0 20000\r\n" + big + "\r\n" +
				"set key-number-three 3 0 40000\r\n" + strings.Repeat("x", 40000) + "\r\n" +
				"get key-number-one key-number-two key-number-three\r\n"
			var out strings.Builder
			newConn(NewServer(store), readWriter{chunkReader{strings.NewReader(script), chunk}, &out}).serve()
			assert.Equal(t, "STORED\r\nSTORED\r\nSERVER_ERROR object too large for cache\r\n"+
				"VALUE key-number-one 1 20\r\n01234567890123456789\r\n"+
				"VALUE key-number-two 2 20000\r\n"+big+"\r\nEND\r\n", out.String())
		})
	}
}
