package cache

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"time"
)

const (
	maxKeyLen = 250
	// maxLineLen bounds a command line; multi-key gets are the only long ones.
	// A multiple of the read buffer, so hitting it leaves no input half-read.
	maxLineLen = 64 << 10
)

// Version is what the version command and stats report.
const Version = "1.6.0-faultline"

var (
	errLineTooLong = errors.New("line too long")
	errQuit        = errors.New("quit")
)

var (
	respError       = "ERROR\r\n"
	respBadFormat   = "CLIENT_ERROR bad command line format\r\n"
	respBadChunk    = "CLIENT_ERROR bad data chunk\r\n"
	respTooLarge    = "SERVER_ERROR object too large for cache\r\n"
	respNonNumeric  = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
	respBadDelta    = "CLIENT_ERROR invalid numeric delta argument\r\n"
	respBadExptime  = "CLIENT_ERROR invalid exptime argument\r\n"
	respBadDelete   = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
	respLineTooLong = "CLIENT_ERROR line too long\r\n"
)

var storeResponses = [...]string{
	stored:    "STORED\r\n",
	notStored: "NOT_STORED\r\n",
	exists:    "EXISTS\r\n",
	notFound:  "NOT_FOUND\r\n",
	tooLarge:  respTooLarge,
}

// conn is one client connection; it is used by a single goroutine.
type conn struct {
	srv  *Server
	r    *bufio.Reader
	w    *bufio.Writer
	long []byte   // accumulates lines longer than r's buffer
	key  []byte   // a storage command's key, copied before reading its data overwrites r's buffer
	toks [][]byte // reused token slice
	num  []byte   // scratch for formatting numbers
}

func newConn(srv *Server, nc io.ReadWriter) *conn {
	return &conn{
		srv:  srv,
		r:    bufio.NewReaderSize(nc, 16<<10),
		w:    bufio.NewWriterSize(nc, 16<<10),
		toks: make([][]byte, 0, 8),
		num:  make([]byte, 0, 24),
	}
}

// serve runs commands until the client quits, the connection fails or a
// line is too long to be a command. Replies are flushed only when no more
// pipelined input is buffered, so a batch of commands costs one write.
func (c *conn) serve() {
	for {
		line, err := c.readLine()
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.w.WriteString(respLineTooLong)
				c.w.Flush()
			}
			return
		}
		if err := c.dispatch(line); err != nil {
			c.w.Flush()
			return
		}
		if c.r.Buffered() == 0 {
			if err := c.w.Flush(); err != nil {
				return
			}
		}
	}
}

func (c *conn) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		c.long = append(c.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(c.long) < maxLineLen {
			line, err = c.r.ReadSlice('\n')
			c.long = append(c.long, line...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errLineTooLong
		}
		line = c.long
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// tokenize splits on spaces, collapsing runs, as memcached does.
func (c *conn) tokenize(line []byte) [][]byte {
	toks := c.toks[:0]
	for len(line) > 0 {
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			toks = append(toks, line)
			break
		}
		if i > 0 {
			toks = append(toks, line[:i])
		}
		line = line[i+1:]
	}
	c.toks = toks
	return toks
}

// dispatch runs one command line; a non-nil error closes the connection.
func (c *conn) dispatch(line []byte) error {
	toks := c.tokenize(line)
	if len(toks) == 0 {
		return c.reply(respError)
	}
	switch string(toks[0]) {
	case "get":
		return c.get(toks[1:], false)
	case "gets":
		return c.get(toks[1:], true)
	case "gat":
		return c.gat(toks, false)
	case "gats":
		return c.gat(toks, true)
	case "set":
		return c.update(modeSet, toks)
	case "add":
		return c.update(modeAdd, toks)
	case "replace":
		return c.update(modeReplace, toks)
	case "append":
		return c.update(modeAppend, toks)
	case "prepend":
		return c.update(modePrepend, toks)
	case "cas":
		return c.update(modeCAS, toks)
	case "delete":
		return c.delete(toks)
	case "incr":
		return c.delta(toks, true)
	case "decr":
		return c.delta(toks, false)
	case "touch":
		return c.touch(toks)
	case "flush_all":
		return c.flushAll(toks)
	case "version":
		if len(toks) != 1 {
			return c.reply(respError)
		}
		return c.reply("VERSION " + Version + "\r\n")
	case "stats":
		return c.stats(toks)
	case "quit":
		return errQuit
	default:
		return c.reply(respError)
	}
}

func (c *conn) reply(s string) error {
	_, err := c.w.WriteString(s)
	return err
}

// replyUnless writes s unless the client asked for noreply. Errors are
// always written: protocol.txt allows it and a silent failure helps no one.
func (c *conn) replyUnless(noreply bool, s string) error {
	if noreply {
		return nil
	}
	return c.reply(s)
}

func noreply(toks [][]byte, full int) bool {
	return len(toks) == full && string(toks[full-1]) == "noreply"
}

func validKeys(keys [][]byte) bool {
	for _, k := range keys {
		if len(k) > maxKeyLen {
			return false
		}
	}
	return true
}

func (c *conn) get(keys [][]byte, withCAS bool) error {
	if len(keys) == 0 {
		return c.reply(respError)
	}
	if !validKeys(keys) {
		return c.reply(respBadFormat)
	}
	for _, k := range keys {
		it, ok := c.srv.store.get(k)
		if ok {
			c.writeValue(k, it, withCAS)
		}
	}
	return c.reply("END\r\n")
}

// gat is "gat|gats <exptime> <key>*".
func (c *conn) gat(toks [][]byte, withCAS bool) error {
	if len(toks) < 3 {
		return c.reply(respError)
	}
	exptime, ok := parseInt(toks[1])
	if !ok {
		return c.reply(respBadExptime)
	}
	keys := toks[2:]
	if !validKeys(keys) {
		return c.reply(respBadFormat)
	}
	for _, k := range keys {
		it, ok := c.srv.store.getAndTouch(k, exptime)
		if ok {
			c.writeValue(k, it, withCAS)
		}
	}
	return c.reply("END\r\n")
}

func (c *conn) writeValue(key []byte, it item, withCAS bool) {
	b := append(c.num[:0], "VALUE "...)
	b = append(b, key...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(it.flags), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(it.value)), 10)
	if withCAS {
		b = append(b, ' ')
		b = strconv.AppendUint(b, it.cas, 10)
	}
	b = append(b, '\r', '\n')
	c.num = b
	c.w.Write(b)
	c.w.Write(it.value)
	c.w.WriteString("\r\n")
}

// update is "<cmd> <key> <flags> <exptime> <bytes> [<cas unique>] [noreply]\r\n<data>\r\n".
func (c *conn) update(mode storeMode, toks [][]byte) error {
	args := 5
	if mode == modeCAS {
		args = 6
	}
	if len(toks) != args && len(toks) != args+1 {
		return c.reply(respError)
	}
	quiet := noreply(toks, args+1)
	key := toks[1]
	flags, okF := parseUint(toks[2], 32)
	exptime, okE := parseInt(toks[3])
	size, okS := parseInt(toks[4])
	var casIn uint64
	okC := true
	if mode == modeCAS {
		casIn, okC = parseUint(toks[5], 64)
	}
	// Without a valid length the data block cannot be skipped, so what
	// follows is read as commands, exactly as memcached does.
	if len(key) > maxKeyLen || !okF || !okE || !okS || !okC || size < 0 || size > 1<<31-3 {
		return c.reply(respBadFormat)
	}
	c.key = append(c.key[:0], key...)
	key = c.key
	if size > int64(c.srv.store.maxItem) {
		if _, err := c.r.Discard(int(size) + 2); err != nil {
			return err
		}
		c.srv.store.rejectTooLarge(mode, key)
		return c.reply(respTooLarge)
	}
	data := make([]byte, size+2)
	if _, err := io.ReadFull(c.r, data); err != nil {
		return err
	}
	if data[size] != '\r' || data[size+1] != '\n' {
		return c.reply(respBadChunk)
	}
	res := c.srv.store.store(mode, key, data[:size:size], uint32(flags), exptime, casIn)
	if res == tooLarge {
		return c.reply(storeResponses[res])
	}
	return c.replyUnless(quiet, storeResponses[res])
}

// delete is "delete <key> [0] [noreply]"; the 0 is a legacy hold time.
func (c *conn) delete(toks [][]byte) error {
	if len(toks) < 2 || len(toks) > 4 {
		return c.reply(respError)
	}
	quiet := string(toks[len(toks)-1]) == "noreply"
	holdZero := len(toks) > 2 && string(toks[2]) == "0"
	valid := len(toks) == 2 || (len(toks) == 3 && (holdZero || quiet)) || (len(toks) == 4 && holdZero && quiet)
	if !valid {
		return c.reply(respBadDelete)
	}
	if len(toks[1]) > maxKeyLen {
		return c.reply(respBadFormat)
	}
	if c.srv.store.delete(toks[1]) {
		return c.replyUnless(quiet, "DELETED\r\n")
	}
	return c.replyUnless(quiet, "NOT_FOUND\r\n")
}

// delta is "incr|decr <key> <value> [noreply]".
func (c *conn) delta(toks [][]byte, incr bool) error {
	if len(toks) != 3 && len(toks) != 4 {
		return c.reply(respError)
	}
	quiet := noreply(toks, 4)
	if len(toks[1]) > maxKeyLen {
		return c.reply(respBadFormat)
	}
	d, ok := parseUint(toks[2], 64)
	if !ok {
		return c.reply(respBadDelta)
	}
	n, found, err := c.srv.store.delta(toks[1], incr, d)
	switch {
	case err != nil:
		return c.reply(respNonNumeric)
	case !found:
		return c.replyUnless(quiet, "NOT_FOUND\r\n")
	case quiet:
		return nil
	}
	b := strconv.AppendUint(c.num[:0], n, 10)
	c.num = append(b, '\r', '\n')
	_, werr := c.w.Write(c.num)
	return werr
}

// touch is "touch <key> <exptime> [noreply]".
func (c *conn) touch(toks [][]byte) error {
	if len(toks) != 3 && len(toks) != 4 {
		return c.reply(respError)
	}
	quiet := noreply(toks, 4)
	if len(toks[1]) > maxKeyLen {
		return c.reply(respBadFormat)
	}
	exptime, ok := parseInt(toks[2])
	if !ok {
		return c.reply(respBadExptime)
	}
	if c.srv.store.touch(toks[1], exptime) {
		return c.replyUnless(quiet, "TOUCHED\r\n")
	}
	return c.replyUnless(quiet, "NOT_FOUND\r\n")
}

// flushAll is "flush_all [delay] [noreply]".
func (c *conn) flushAll(toks [][]byte) error {
	if len(toks) > 3 {
		return c.reply(respError)
	}
	quiet := string(toks[len(toks)-1]) == "noreply"
	var delay int64
	if n := len(toks); n == 3 || (n == 2 && !quiet) {
		d, ok := parseInt(toks[1])
		if !ok || d < 0 {
			return c.reply(respBadFormat)
		}
		delay = d
	}
	c.srv.store.flush(delay)
	return c.replyUnless(quiet, "OK\r\n")
}

// stats answers the general group only; memcached answers ERROR to
// groups it does not know, and we know no others.
func (c *conn) stats(toks [][]byte) error {
	if len(toks) != 1 {
		return c.reply(respError)
	}
	for _, st := range c.srv.stats() {
		b := append(c.num[:0], "STAT "...)
		b = append(b, st.name...)
		b = append(b, ' ')
		b = append(b, st.value...)
		c.num = append(b, '\r', '\n')
		if _, err := c.w.Write(c.num); err != nil {
			return err
		}
	}
	return c.reply("END\r\n")
}

type stat struct{ name, value string }

func (s *Server) stats() []stat {
	st := s.store.Stats()
	now := s.store.now()
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	return []stat{
		{"pid", strconv.Itoa(os.Getpid())},
		{"uptime", strconv.FormatInt(int64(now.Sub(s.started)/time.Second), 10)},
		{"time", strconv.FormatInt(now.Unix(), 10)},
		{"version", Version},
		{"curr_connections", strconv.FormatInt(s.currConns.Load(), 10)},
		{"total_connections", u(s.totalConns.Load())},
		{"cmd_get", u(st.CmdGet)},
		{"cmd_set", u(st.CmdSet)},
		{"cmd_touch", u(st.CmdTouch)},
		{"get_hits", u(st.GetHits)},
		{"get_misses", u(st.GetMisses)},
		{"delete_misses", u(st.DeleteMisses)},
		{"delete_hits", u(st.DeleteHits)},
		{"incr_misses", u(st.IncrMisses)},
		{"incr_hits", u(st.IncrHits)},
		{"decr_misses", u(st.DecrMisses)},
		{"decr_hits", u(st.DecrHits)},
		{"cas_misses", u(st.CasMisses)},
		{"cas_hits", u(st.CasHits)},
		{"cas_badval", u(st.CasBadval)},
		{"touch_hits", u(st.TouchHits)},
		{"touch_misses", u(st.TouchMisses)},
		{"limit_maxbytes", u(st.LimitMaxBytes)},
		{"bytes", u(st.Bytes)},
		{"curr_items", u(st.CurrItems)},
		{"total_items", u(st.TotalItems)},
		{"evictions", u(st.Evictions)},
		{"reclaimed", u(st.Reclaimed)},
	}
}

// parseUint accepts only decimal digits that fit in bits, like memcached's
// safe_strtoul/safe_strtoull (no sign, no spaces).
func parseUint(b []byte, bits int) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		d := uint64(ch - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if bits < 64 && n >= 1<<bits {
		return 0, false
	}
	return n, true
}

// parseInt accepts an optional minus sign and decimal digits, as an exptime.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	n, ok := parseUint(b, 63)
	if !ok {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}
