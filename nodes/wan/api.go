package wan

import (
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// PartitionRequest is the body of POST /partitions. Each entry of Src and
// Dst is a region name, a prefix ("10.1.0.0/24") or an address.
type PartitionRequest struct {
	Src []string `json:"src"`
	Dst []string `json:"dst"`
}

// NewHandler serves the control API of e:
//
//	GET /healthz              200 "ok"
//	GET /links                [LinkSpec...]
//	PUT /links                [LinkSpec...] replaces every link
//	GET /partitions           [Partition...]
//	POST /partitions          PartitionRequest -> {"id": "p1"}
//	DELETE /partitions/{id}   remove one (404 if unknown)
//	DELETE /partitions        heal all
//	GET /stats                [LinkStats...]
//	GET /metrics              Prometheus: per-link packets, bytes and drops
func NewHandler(e *Engine) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(newRegistry(e), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /links", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(e.Links()))
	})
	mux.HandleFunc("PUT /links", func(w http.ResponseWriter, r *http.Request) {
		var specs []LinkSpec
		if err := decodeStrict(r, &specs); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := e.SetLinks(specs); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, nonNil(e.Links()))
	})
	mux.HandleFunc("GET /partitions", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(e.Partitions()))
	})
	mux.HandleFunc("POST /partitions", func(w http.ResponseWriter, r *http.Request) {
		var req PartitionRequest
		if err := decodeStrict(r, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		src, err := e.resolve(req.Src)
		if err != nil {
			http.Error(w, "src: "+err.Error(), http.StatusBadRequest)
			return
		}
		dst, err := e.resolve(req.Dst)
		if err != nil {
			http.Error(w, "dst: "+err.Error(), http.StatusBadRequest)
			return
		}
		id, err := e.AddPartition(src, dst)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	})
	mux.HandleFunc("DELETE /partitions/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !e.RemovePartition(r.PathValue("id")) {
			http.Error(w, "no such partition", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /partitions", func(w http.ResponseWriter, _ *http.Request) {
		e.HealAll()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(e.Stats()))
	})
	return mux
}

// resolve turns region names, prefixes and addresses into prefixes.
func (e *Engine) resolve(items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range items {
		if i, ok := e.regionIndex(s); ok {
			out = append(out, e.regions[i-1].Prefix)
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a region, prefix or address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
