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
	body, err := json.Marshal(spec)
	if err != nil {
		return Final{}, fmt.Errorf("encode spec: %w", err)
	}
	url := strings.TrimSuffix(c.BaseURL, "/") + AttackPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Final{}, fmt.Errorf("attack %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Final{}, fmt.Errorf("attack %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return Final{}, fmt.Errorf("attack %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}

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
