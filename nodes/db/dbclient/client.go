package dbclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("key not found")

// ConflictError is returned when a CAS (alone or in a batch) did not match.
type ConflictError struct {
	// Current is the key's state when the comparison failed (Version 0:
	// the key did not exist).
	Current Entry
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("cas conflict on %q: current version %d", e.Current.Key, e.Current.Version)
}

// StatusError is any other non-2xx answer.
type StatusError struct {
	Code int
	Body ErrorBody
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("db: HTTP %d: %s", e.Code, e.Body.Error)
}

// Indefinite reports whether a failed write may still have taken effect:
// the server said so, or no answer came back at all (timeout, connection
// lost). History checkers must treat such writes as possibly applied.
func Indefinite(err error) bool {
	if err == nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Body.Indefinite
	}
	var ce *ConflictError
	return !errors.As(err, &ce) && !errors.Is(err, ErrNotFound)
}

// Client talks to one db node. Any node accepts any request: followers
// forward writes and non-stale reads to the leader.
type Client struct {
	base string
	hc   *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces http.DefaultClient (timeouts belong in the
// contexts passed to each call).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client for the node at baseURL ("http://host:port").
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// ReadResult is an Entry plus how it was served.
type ReadResult struct {
	Entry
	// Staleness is the serving node's time since leader contact; -1 if the
	// node has never heard from a leader.
	Staleness time.Duration
	ServedBy  string
	// ForwardedBy is the node that proxied the read to the leader, if any.
	ForwardedBy string
}

// ReadOption tunes one Get.
type ReadOption func(url.Values)

// MaxStaleness makes a stale read fail (HTTP 503) rather than return data
// from a node that has not heard from the leader for longer than d.
func MaxStaleness(d time.Duration) ReadOption {
	return func(v url.Values) { v.Set("max_staleness", d.String()) }
}

// Get reads key at the given consistency; a missing key is ErrNotFound.
func (c *Client) Get(ctx context.Context, key string, level Consistency, opts ...ReadOption) (ReadResult, error) {
	q := url.Values{"consistency": {string(level)}}
	for _, o := range opts {
		o(q)
	}
	var res ReadResult
	hdr, err := c.do(ctx, http.MethodGet, kvPath(key)+"?"+q.Encode(), nil, &res.Entry)
	if hdr != nil {
		res.ServedBy = hdr.Get(HeaderServedBy)
		res.ForwardedBy = hdr.Get(HeaderForwardedBy)
		if ms, perr := strconv.ParseInt(hdr.Get(HeaderStaleness), 10, 64); perr == nil {
			res.Staleness = time.Duration(ms) * time.Millisecond
			if ms < 0 {
				res.Staleness = -1
			}
		}
	}
	return res, err
}

// Put writes value and returns its version.
func (c *Client) Put(ctx context.Context, key, value string) (uint64, error) {
	var res WriteResult
	_, err := c.do(ctx, http.MethodPut, kvPath(key), strings.NewReader(value), &res)
	return res.Version, err
}

// Delete removes key; deleting a missing key succeeds.
func (c *Client) Delete(ctx context.Context, key string) (uint64, error) {
	var res WriteResult
	_, err := c.do(ctx, http.MethodDelete, kvPath(key), nil, &res)
	return res.Version, err
}

// CAS writes value if the key matches req's expectations; a mismatch is a
// *ConflictError carrying the current state.
func (c *Client) CAS(ctx context.Context, key string, req CASRequest) (uint64, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, fmt.Errorf("cas %q: %w", key, err)
	}
	var res WriteResult
	_, err = c.do(ctx, http.MethodPost, kvPath(key)+"/cas", bytes.NewReader(body), &res)
	return res.Version, err
}

// Batch applies ops atomically in one raft entry and returns its version.
func (c *Client) Batch(ctx context.Context, ops []Op) (uint64, error) {
	body, err := json.Marshal(BatchRequest{Ops: ops})
	if err != nil {
		return 0, fmt.Errorf("batch: %w", err)
	}
	var res WriteResult
	_, err = c.do(ctx, http.MethodPost, "/batch", bytes.NewReader(body), &res)
	return res.Version, err
}

// Status returns the node's view of the cluster.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	_, err := c.do(ctx, http.MethodGet, "/status", nil, &st)
	return st, err
}

// Join asks the cluster to add a node (used by the nodes themselves).
func (c *Client) Join(ctx context.Context, req JoinRequest) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	_, err = c.do(ctx, http.MethodPost, "/join", bytes.NewReader(body), nil)
	return err
}

func kvPath(key string) string { return "/kv/" + url.PathEscape(key) }

// do sends one request and decodes a 2xx JSON answer into out. It returns
// the response headers whenever a response arrived.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.Header, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	switch {
	case resp.StatusCode/100 == 2:
		if out == nil || len(data) == 0 {
			return resp.Header, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
		return resp.Header, nil
	case resp.StatusCode == http.StatusNotFound && method == http.MethodGet:
		return resp.Header, fmt.Errorf("%s %s: %w", method, path, ErrNotFound)
	case resp.StatusCode == http.StatusConflict:
		var res WriteResult
		if err := json.Unmarshal(data, &res); err != nil || res.Conflict == nil {
			return resp.Header, &StatusError{Code: resp.StatusCode, Body: ErrorBody{Error: string(data)}}
		}
		return resp.Header, &ConflictError{Current: *res.Conflict}
	default:
		se := &StatusError{Code: resp.StatusCode}
		if json.Unmarshal(data, &se.Body) != nil || se.Body.Error == "" {
			// Not one of ours (a proxy, a crashed handler): nothing says
			// the write did not happen.
			se.Body = ErrorBody{Error: strings.TrimSpace(string(data)), Indefinite: method != http.MethodGet}
		}
		return resp.Header, se
	}
}
