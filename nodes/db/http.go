package db

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

const maxBody = 4 << 20

// Handler is the node's HTTP API (see dbclient for the shapes).
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /kv/{key}", n.handleGet)
	mux.HandleFunc("PUT /kv/{key}", n.handlePut)
	mux.HandleFunc("DELETE /kv/{key}", n.handleDelete)
	mux.HandleFunc("POST /kv/{key}/cas", n.handleCAS)
	mux.HandleFunc("POST /batch", n.handleBatch)
	mux.HandleFunc("POST /join", n.handleJoin)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, n.Status())
	})
	// Healthy means serving: a node cannot know a leader before the
	// controller has routed its region to the others, which it does once
	// every node is healthy. Whether the cluster has formed is /status's
	// to tell (the engine waits for that before a run's load starts).
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(dbclient.HeaderServedBy, n.cfg.ID)
		mux.ServeHTTP(w, r)
	})
}

func (n *Node) isLeader() bool { return n.raft.State() == raft.Leader }

func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	q := r.URL.Query()
	level := dbclient.Consistency(q.Get("consistency"))
	if level == "" {
		level = dbclient.Linearizable
	}
	if !level.Valid() {
		writeError(w, http.StatusBadRequest, fmt.Errorf("unknown consistency %q", level), false)
		return
	}
	var maxStale time.Duration
	if s := q.Get("max_staleness"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("bad max_staleness %q", s), false)
			return
		}
		maxStale = d
	}

	var (
		e     dbclient.Entry
		found bool
		err   error
	)
	switch {
	case level == dbclient.Stale:
		stale, known := n.staleness()
		if known {
			w.Header().Set(dbclient.HeaderStaleness, strconv.FormatInt(stale.Milliseconds(), 10))
		} else {
			w.Header().Set(dbclient.HeaderStaleness, "-1")
		}
		if maxStale > 0 && (!known || stale > maxStale) {
			n.metrics.staleRefused.Inc()
			msg := "stale read refused: this node has never heard from a leader"
			if known {
				msg = fmt.Sprintf("stale read refused: last contact with the leader %s ago exceeds max_staleness %s",
					stale.Round(time.Millisecond), maxStale)
			}
			writeError(w, http.StatusServiceUnavailable, errors.New(msg), false)
			return
		}
		e, found, err = n.fsm.get(key)
	case !n.isLeader():
		n.forward(w, r, "read")
		return
	case level == dbclient.Leader:
		w.Header().Set(dbclient.HeaderStaleness, "0")
		e, found, err = n.fsm.get(key)
	default:
		w.Header().Set(dbclient.HeaderStaleness, "0")
		e, found, err = n.readLinearizable(r.Context(), key)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err, false)
			return
		}
	}
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err, false)
	case !found:
		writeError(w, http.StatusNotFound, fmt.Errorf("key %q not found", key), false)
	default:
		writeJSON(w, http.StatusOK, e)
	}
}

func (n *Node) handlePut(w http.ResponseWriter, r *http.Request) {
	if !n.isLeader() {
		n.forward(w, r, "write")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("read body: %w", err), false)
		return
	}
	n.serveWrite(w, r, []dbclient.Op{{Op: dbclient.OpPut, Key: r.PathValue("key"), Value: string(body)}})
}

func (n *Node) handleDelete(w http.ResponseWriter, r *http.Request) {
	if !n.isLeader() {
		n.forward(w, r, "write")
		return
	}
	n.serveWrite(w, r, []dbclient.Op{{Op: dbclient.OpDelete, Key: r.PathValue("key")}})
}

func (n *Node) handleCAS(w http.ResponseWriter, r *http.Request) {
	if !n.isLeader() {
		n.forward(w, r, "write")
		return
	}
	var req dbclient.CASRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err, false)
		return
	}
	n.serveWrite(w, r, []dbclient.Op{{
		Op: dbclient.OpCAS, Key: r.PathValue("key"), Value: req.Value,
		ExpectedVersion: req.ExpectedVersion, ExpectedValue: req.ExpectedValue,
	}})
}

func (n *Node) handleBatch(w http.ResponseWriter, r *http.Request) {
	if !n.isLeader() {
		n.forward(w, r, "write")
		return
	}
	var req dbclient.BatchRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err, false)
		return
	}
	n.serveWrite(w, r, req.Ops)
}

func (n *Node) serveWrite(w http.ResponseWriter, r *http.Request, ops []dbclient.Op) {
	if err := validateOps(ops); err != nil {
		writeError(w, http.StatusBadRequest, err, false)
		return
	}
	res, early, err := n.write(r.Context(), ops)
	var we *raftError
	switch {
	case errors.As(err, &we):
		writeError(w, http.StatusServiceUnavailable, err, we.indefinite)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err, true)
	case !res.OK:
		writeJSON(w, http.StatusConflict, res)
	default:
		if early {
			w.Header().Set(dbclient.HeaderUnsafeAck, "true")
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	if !n.isLeader() {
		n.forward(w, r, "join")
		return
	}
	var req dbclient.JoinRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err, false)
		return
	}
	if err := n.addMember(r.Context(), req); err != nil {
		writeError(w, http.StatusServiceUnavailable, err, false)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// forward proxies a request to the leader's HTTP address. It forwards at
// most once: a request that arrives already forwarded and finds this node
// not leading either is refused, so a stale leader view cannot loop.
func (n *Node) forward(w http.ResponseWriter, r *http.Request, kind string) {
	mayHaveWritten := kind != "read"
	if by := r.Header.Get(dbclient.HeaderForwardedBy); by != "" {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("not leader (forwarded here by %s)", by), false)
		return
	}
	_, id := n.raft.LeaderWithID()
	p, ok := n.peers[string(id)]
	if id == "" || !ok || id == raft.ServerID(n.cfg.ID) {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("no leader known to %s", n.cfg.ID), false)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.HTTPAddr+r.URL.RequestURI(), r.Body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("forward to %s: %w", p.ID, err), false)
		return
	}
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	req.Header.Set(dbclient.HeaderForwardedBy, n.cfg.ID)
	n.metrics.forwarded.WithLabelValues(kind).Inc()
	resp, err := n.http.Do(req)
	if err != nil {
		// A connection never made carried nothing to the leader.
		var op *net.OpError
		dialFailed := errors.As(err, &op) && op.Op == "dial"
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("forward to leader %s: %w", p.ID, err), mayHaveWritten && !dialFailed)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.Header().Set(dbclient.HeaderForwardedBy, n.cfg.ID)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error, indefinite bool) {
	writeJSON(w, code, dbclient.ErrorBody{Error: err.Error(), Indefinite: indefinite})
}
