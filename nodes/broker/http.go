package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline/faultline/nodes/broker/protocol"
	"github.com/faultline/faultline/nodes/nodekit"
)

// The broker's HTTP side is for the controller on the host, which reaches
// every node only through its published HTTP port: /healthz and /metrics
// like every node, the metadata as this broker sees it (who leads each
// partition, for faults on "the leader" and failover times), and topic
// creation, so a run's topic exists before its clock starts.
const (
	MetadataPath = "/broker/metadata"
	TopicsPath   = "/broker/topics"
)

// Metadata is GET MetadataPath: the controller state this broker has
// applied. Controller is the raft leader's id, -1 when none is known.
type Metadata struct {
	Broker     int32                `json:"broker"`
	Controller int32                `json:"controller"`
	Brokers    []protocol.Broker    `json:"brokers"`
	Topics     []protocol.TopicMeta `json:"topics"`
}

// CreateTopic is the body of POST TopicsPath; zero fields take the
// broker's defaults. Creating a topic that exists answers 200 too, so every
// caller can make sure it exists.
type CreateTopic struct {
	Name              string `json:"name"`
	Partitions        int32  `json:"partitions"`
	ReplicationFactor int32  `json:"replication_factor"`
	MinISR            int32  `json:"min_insync"`
}

// Handler serves the broker's HTTP API (without /healthz and /metrics,
// which nodekit adds).
func (b *Broker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+MetadataPath, func(w http.ResponseWriter, _ *http.Request) {
		st, _ := b.ctrl.Watch()
		leader, ok := b.ctrl.Leader()
		if !ok {
			leader = -1
		}
		m := st.Metadata(leader, nil)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Metadata{Broker: b.cfg.ID, Controller: leader, Brokers: m.Brokers, Topics: m.Topics})
	})
	mux.HandleFunc("POST "+TopicsPath, func(w http.ResponseWriter, r *http.Request) {
		var req CreateTopic
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Name == "" || req.Partitions < 1 {
			http.Error(w, fmt.Sprintf("want {name, partitions >= 1, replication_factor, min_insync}: %v", err), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		resp := b.handle(ctx, &protocol.CreateTopicRequest{
			Name: req.Name, Partitions: req.Partitions, ReplicationFactor: req.ReplicationFactor, MinISR: req.MinISR,
		}).(*protocol.ErrResponse)
		err := resp.Err.Err()
		switch {
		case err == nil || errors.Is(err, protocol.TopicAlreadyExists):
			w.WriteHeader(http.StatusOK)
		case resp.Err.Retriable():
			http.Error(w, resp.Message, http.StatusServiceUnavailable)
		default:
			http.Error(w, resp.Message, http.StatusBadRequest)
		}
	})
	return mux
}

// serveHTTP runs the HTTP side on addr until ctx ends.
func serveHTTP(ctx context.Context, addr string, b *Broker) error {
	reg := nodekit.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "broker", Name: "partitions_led",
		Help: "Partitions this broker leads.",
	}, func() float64 {
		n := 0
		for _, p := range b.partitionList() {
			p.mu.Lock()
			if p.leader == b.cfg.ID {
				n++
			}
			p.mu.Unlock()
		}
		return float64(n)
	}))
	return nodekit.Serve(ctx, nodekit.NewServer(addr, b.Handler(), reg))
}
