// Package dbclient is the Go client of faultline's replicated db role, and
// the home of the JSON shapes both sides of its HTTP API speak.
package dbclient

// Consistency is the read level a GET asks for.
type Consistency string

const (
	// Linearizable reads are served by a leader that a quorum has just
	// confirmed, after it has applied everything committed before the read.
	Linearizable Consistency = "linearizable"
	// Leader reads are served from the leader's local state without a quorum
	// round trip: a deposed leader that has not noticed yet can serve old data.
	Leader Consistency = "leader"
	// Stale reads are served from the local state of whichever node is asked.
	Stale Consistency = "stale"
)

// Valid reports whether c is one of the known levels.
func (c Consistency) Valid() bool {
	return c == Linearizable || c == Leader || c == Stale
}

// Headers the server sets so that clients and checkers can tell who did what.
const (
	// HeaderForwardedBy is set on a request a follower proxies to the leader
	// (value: the follower's id) and echoed on the response.
	HeaderForwardedBy = "X-Faultline-Forwarded-By"
	// HeaderServedBy names the node that executed the request.
	HeaderServedBy = "X-Faultline-Served-By"
	// HeaderStaleness is the read's staleness in milliseconds (time since the
	// serving node last heard from a leader; 0 on the leader itself).
	HeaderStaleness = "X-Faultline-Staleness-Ms"
	// HeaderUnsafeAck marks a write acknowledged before a quorum stored it.
	HeaderUnsafeAck = "X-Faultline-Unsafe-Ack"
)

// Entry is one key's value and the raft index of its last write.
type Entry struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
}

// OpKind names one operation inside a batch.
type OpKind string

const (
	OpPut    OpKind = "put"
	OpDelete OpKind = "delete"
	// OpCAS writes Value only if the key matches ExpectedVersion and/or
	// ExpectedValue; in a batch a failed CAS aborts every op of the batch.
	OpCAS OpKind = "cas"
)

// Op is one operation of a batch (and the body of a single CAS).
type Op struct {
	Op    OpKind `json:"op"`
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	// ExpectedVersion 0 means "the key must not exist".
	ExpectedVersion *uint64 `json:"expected_version,omitempty"`
	ExpectedValue   *string `json:"expected_value,omitempty"`
}

// CASRequest is the body of POST /kv/{key}/cas.
type CASRequest struct {
	ExpectedVersion *uint64 `json:"expected_version,omitempty"`
	ExpectedValue   *string `json:"expected_value,omitempty"`
	Value           string  `json:"value"`
}

// BatchRequest is the body of POST /batch.
type BatchRequest struct {
	Ops []Op `json:"ops"`
}

// WriteResult answers a PUT, DELETE, CAS or batch. Version is the raft index
// of the entry that carried the write (every key a batch writes gets it).
// When OK is false (a CAS did not match) Conflict holds the state of the key
// that failed the comparison.
type WriteResult struct {
	OK       bool   `json:"ok"`
	Version  uint64 `json:"version,omitempty"`
	Conflict *Entry `json:"conflict,omitempty"`
	// Existed is set by DELETE.
	Existed bool `json:"existed,omitempty"`
}

// ErrorBody is the JSON body of every non-2xx answer.
type ErrorBody struct {
	Error string `json:"error"`
	// Indefinite is true when a write may or may not have been committed
	// (e.g. the leader lost leadership after appending it). A checker must
	// treat such a write as possibly applied.
	Indefinite bool `json:"indefinite,omitempty"`
}

// Status is the body of GET /status.
type Status struct {
	ID            string `json:"id"`
	Role          string `json:"role"`
	Voter         bool   `json:"voter"`
	LeaderID      string `json:"leader_id"`
	LeaderAddr    string `json:"leader_addr"`
	Term          uint64 `json:"term"`
	LastIndex     uint64 `json:"last_index"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastContactMs int64  `json:"last_contact_ms"`
	UnsafeAck     bool   `json:"unsafe_ack"`
}

// JoinRequest is the body of POST /join, which a new node sends to any
// member; the leader adds it to the raft configuration.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Voter    bool   `json:"voter"`
}
