package netsetup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/faultline/faultline/nodes/wan"
)

// WAN is a client of the wan role's control API, published on 127.0.0.1.
type WAN struct {
	base string
	hc   *http.Client
}

func newWAN(addr string) *WAN {
	return &WAN{base: "http://" + addr, hc: &http.Client{Timeout: 10 * time.Second}}
}

// Links returns the configured links, one per direction.
func (w *WAN) Links(ctx context.Context) ([]wan.LinkSpec, error) {
	var out []wan.LinkSpec
	return out, w.do(ctx, http.MethodGet, "/links", nil, &out, http.StatusOK)
}

// SetLinks replaces every link.
func (w *WAN) SetLinks(ctx context.Context, links []wan.LinkSpec) error {
	return w.do(ctx, http.MethodPut, "/links", links, nil, http.StatusOK)
}

// Partition drops every packet from src to dst (region names, prefixes or
// addresses) until Unpartition; it is one-way.
func (w *WAN) Partition(ctx context.Context, src, dst []string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := w.do(ctx, http.MethodPost, "/partitions", wan.PartitionRequest{Src: src, Dst: dst}, &out, http.StatusCreated)
	return out.ID, err
}

// Unpartition removes one partition.
func (w *WAN) Unpartition(ctx context.Context, id string) error {
	return w.do(ctx, http.MethodDelete, "/partitions/"+id, nil, nil, http.StatusNoContent)
}

// Partitions lists the partitions in force.
func (w *WAN) Partitions(ctx context.Context) ([]wan.Partition, error) {
	var out []wan.Partition
	return out, w.do(ctx, http.MethodGet, "/partitions", nil, &out, http.StatusOK)
}

func (w *WAN) do(ctx context.Context, method, path string, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("wan %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, body)
	if err != nil {
		return fmt.Errorf("wan %s %s: %w", method, path, err)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return fmt.Errorf("wan %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("wan %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("wan %s %s: decode: %w", method, path, err)
	}
	return nil
}

// LinkStrings renders links as sorted "from->to delay/jitter/loss/bps"
// strings, for comparing one configuration with another.
func LinkStrings(links []wan.LinkSpec) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = fmt.Sprintf("%s->%s %s/%s/%g/%d", l.From, l.To, l.Delay, l.Jitter, l.Loss, l.BandwidthBps)
	}
	slices.Sort(out)
	return out
}
