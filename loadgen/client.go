package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// AttackPath is where the loadgen role accepts attacks.
const AttackPath = "/attack"

// Client starts attacks on a remote loadgen role.
type Client struct {
	BaseURL string       // e.g. http://127.0.0.1:32768
	HTTP    *http.Client // http.DefaultClient when nil; must not time out before the attack ends
}

// Attack runs spec on the remote loadgen, calling onBucket for each streamed
// bucket, and returns its Final. Canceling ctx closes the stream, which stops
// the remote attack.
func (c *Client) Attack(ctx context.Context, spec AttackSpec, onBucket func(Bucket)) (Final, error) {
	url := strings.TrimSuffix(c.BaseURL, "/") + AttackPath
	resp, err := c.start(ctx, "attack", url, spec)
	if err != nil {
		return Final{}, err
	}
	defer resp.Body.Close()

	final, err := readStream(resp.Body, onBucket)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return final, fmt.Errorf("attack %s: %w", url, err)
	}
	return final, nil
}

// readStream reads an attack's NDJSON stream up to its Final. A Final with
// an Error is returned along with that error.
func readStream(r io.Reader, onBucket func(Bucket)) (Final, error) {
	dec := json.NewDecoder(r)
	for {
		var m Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Final{}, fmt.Errorf("read stream: %w", err)
		}
		switch {
		case m.Final != nil:
			if m.Final.Error != "" {
				return *m.Final, fmt.Errorf("remote: %s", m.Final.Error)
			}
			return *m.Final, nil
		case m.Bucket != nil:
			if m.Bucket.Latency != nil {
				if err := m.Bucket.Latency.Validate(); err != nil {
					return Final{}, fmt.Errorf("bucket %d: %w", m.Bucket.Second, err)
				}
			}
			onBucket(*m.Bucket)
		default:
			return Final{}, errors.New("stream line with neither bucket nor final")
		}
	}
}

// start POSTs spec to the loadgen at url and returns the accepted stream's
// response; what names the call in errors.
func (c *Client) start(ctx context.Context, what, url string, spec any) (*http.Response, error) {
	body, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s %s: %s: %s", what, url, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}
