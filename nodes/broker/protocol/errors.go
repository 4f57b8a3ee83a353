package protocol

import "errors"

// ErrorCode is a response's error; zero is success. Codes follow Kafka's
// numbering where Kafka has the same error.
type ErrorCode int16

const (
	None                         ErrorCode = 0
	OffsetOutOfRange             ErrorCode = 1
	CorruptMessage               ErrorCode = 2
	UnknownTopicOrPartition      ErrorCode = 3
	LeaderNotAvailable           ErrorCode = 5
	NotLeader                    ErrorCode = 6
	RequestTimedOut              ErrorCode = 7
	NotEnoughReplicas            ErrorCode = 19
	NotEnoughReplicasAfterAppend ErrorCode = 20
	InvalidRequest               ErrorCode = 42
	UnsupportedVersion           ErrorCode = 35
	TopicAlreadyExists           ErrorCode = 36
	InvalidReplicationFactor     ErrorCode = 38
	NotController                ErrorCode = 41
	FencedLeaderEpoch            ErrorCode = 74
	Unknown                      ErrorCode = -1
)

var codeNames = map[ErrorCode]string{
	OffsetOutOfRange:             "offset out of range",
	CorruptMessage:               "corrupt message",
	UnknownTopicOrPartition:      "unknown topic or partition",
	LeaderNotAvailable:           "leader not available",
	NotLeader:                    "not the leader for the partition",
	RequestTimedOut:              "request timed out",
	NotEnoughReplicas:            "not enough in-sync replicas",
	NotEnoughReplicasAfterAppend: "not enough in-sync replicas after append",
	InvalidRequest:               "invalid request",
	UnsupportedVersion:           "unsupported version",
	TopicAlreadyExists:           "topic already exists",
	InvalidReplicationFactor:     "invalid replication factor",
	NotController:                "not the controller",
	FencedLeaderEpoch:            "fenced leader epoch",
	Unknown:                      "unknown server error",
}

func (c ErrorCode) Error() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return "unknown error code"
}

// Err is nil for None and the code otherwise, so callers can write
// `if err := resp.Err.Err(); err != nil` and test with errors.Is.
func (c ErrorCode) Err() error {
	if c == None {
		return nil
	}
	return c
}

// Retriable says whether a client should refresh metadata and retry.
func (c ErrorCode) Retriable() bool {
	switch c {
	case NotLeader, LeaderNotAvailable, RequestTimedOut, NotEnoughReplicas,
		NotEnoughReplicasAfterAppend, UnknownTopicOrPartition, NotController, FencedLeaderEpoch:
		return true
	}
	return false
}

// ErrUnsupportedVersion is returned for an unknown API key or version.
var ErrUnsupportedVersion = errors.New("unsupported api version")

// CodeOf maps an error to a code for a response.
func CodeOf(err error) ErrorCode {
	if err == nil {
		return None
	}
	var c ErrorCode
	if errors.As(err, &c) {
		return c
	}
	if errors.Is(err, ErrUnsupportedVersion) {
		return UnsupportedVersion
	}
	if errors.Is(err, ErrMalformed) {
		return InvalidRequest
	}
	return Unknown
}
