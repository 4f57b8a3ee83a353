package db

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

// metrics lives in a registry per node, so several nodes can share a
// process (the tests run whole clusters in one).
type metrics struct {
	reg           *prometheus.Registry
	writeLatency  *prometheus.HistogramVec
	forwarded     *prometheus.CounterVec
	leaderChanges prometheus.Counter
	staleRefused  prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		writeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "faultline_db_write_seconds",
			Help:    "Time from a write reaching the leader to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"op"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faultline_db_forwarded_requests_total",
			Help: "Requests this node proxied to the leader.",
		}, []string{"kind"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultline_db_leader_changes_total",
			Help: "Times this node saw a different leader.",
		}),
		staleRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faultline_db_stale_reads_refused_total",
			Help: "Stale reads refused because the leader was out of touch for longer than max_staleness.",
		}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		m.writeLatency, m.forwarded, m.leaderChanges, m.staleRefused,
		gauge("faultline_db_raft_role", "0 follower, 1 candidate, 2 leader, 3 shutdown.",
			func() float64 { return roleValue(n.raft.State()) }),
		gauge("faultline_db_raft_term", "Current raft term.",
			func() float64 { return float64(n.raft.CurrentTerm()) }),
		gauge("faultline_db_raft_commit_index", "Highest raft index known committed.",
			func() float64 { return float64(n.raft.CommitIndex()) }),
		gauge("faultline_db_raft_applied_index", "Highest raft index applied to the local state.",
			func() float64 { return float64(n.fsm.appliedIndex()) }),
		gauge("faultline_db_raft_last_contact_seconds", "Time since the last leader contact (0 on the leader, -1 never).",
			func() float64 {
				if s, ok := n.staleness(); ok {
					return s.Seconds()
				}
				return -1
			}),
	)
	return m
}

func roleValue(s raft.RaftState) float64 {
	switch s {
	case raft.Follower:
		return 0
	case raft.Candidate:
		return 1
	case raft.Leader:
		return 2
	default:
		return 3
	}
}

func (m *metrics) observeWrite(ops []dbclient.Op, start time.Time) {
	op := "batch"
	if len(ops) == 1 {
		op = string(ops[0].Op)
	}
	m.writeLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
