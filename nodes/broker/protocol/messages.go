package protocol

import (
	"encoding/binary"
	"fmt"
)

// APIKey names a request type.
type APIKey int16

const (
	KeyProduce     APIKey = 0
	KeyFetch       APIKey = 1
	KeyMetadata    APIKey = 3
	KeyCreateTopic APIKey = 19
	KeyHeartbeat   APIKey = 60
	KeyAlterISR    APIKey = 56
)

// Version is the one version of every API this build speaks; a peer sending
// another gets ErrUnsupportedVersion rather than a misparse.
const Version int16 = 1

// Message is a request or response body.
type Message interface {
	encode(*encoder)
	decode(*decoder)
}

// Request is a message a client sends.
type Request interface {
	Message
	Key() APIKey
}

// Record is a key and value as a producer sends it; the leader assigns
// offsets.
type Record struct {
	Key, Value []byte
}

type ProduceRequest struct {
	Topic     string
	Partition int32
	Acks      int8 // 0, 1 or -1 (all)
	TimeoutMs int32
	Records   []Record
}

type ProduceResponse struct {
	Err        ErrorCode
	BaseOffset int64
}

// FetchRequest reads from Offset. ReplicaID is -1 for consumers, which only
// see committed records; followers pass their id and get everything.
type FetchRequest struct {
	ReplicaID        int32
	Topic            string
	Partition        int32
	Offset           int64
	LastFetchedEpoch int32 // followers: epoch of the record before Offset
	MaxBytes         int32
	MaxWaitMs        int32
}

// FetchResponse carries raw log frames (see the log package's DecodeAll).
// A follower whose log diverged gets DivergingEnd >= 0: it truncates there.
type FetchResponse struct {
	Err            ErrorCode
	HighWatermark  int64
	LogStart       int64
	LeaderEpoch    int32
	DivergingEpoch int32
	DivergingEnd   int64
	Records        []byte
}

type MetadataRequest struct {
	Topics []string // empty: all
}

type Broker struct {
	ID   int32
	Addr string
}

type PartitionMeta struct {
	ID       int32
	Leader   int32 // -1: offline
	Epoch    int32
	Replicas []int32
	ISR      []int32
}

type TopicMeta struct {
	Name       string
	Err        ErrorCode
	MinISR     int32
	Partitions []PartitionMeta
}

type MetadataResponse struct {
	ControllerID int32
	Brokers      []Broker
	Topics       []TopicMeta
}

type CreateTopicRequest struct {
	Name              string
	Partitions        int32
	ReplicationFactor int32
	MinISR            int32
	Unclean           bool
}

// ErrResponse is the reply of requests that only succeed or fail.
type ErrResponse struct {
	Err     ErrorCode
	Message string
}

type HeartbeatRequest struct {
	BrokerID int32
	Addr     string
}

// AlterISRRequest is a partition leader asking the controller to change the
// in-sync set; it is refused unless LeaderID and LeaderEpoch are current.
type AlterISRRequest struct {
	Topic       string
	Partition   int32
	LeaderID    int32
	LeaderEpoch int32
	ISR         []int32
}

func (*ProduceRequest) Key() APIKey     { return KeyProduce }
func (*FetchRequest) Key() APIKey       { return KeyFetch }
func (*MetadataRequest) Key() APIKey    { return KeyMetadata }
func (*CreateTopicRequest) Key() APIKey { return KeyCreateTopic }
func (*HeartbeatRequest) Key() APIKey   { return KeyHeartbeat }
func (*AlterISRRequest) Key() APIKey    { return KeyAlterISR }

func (m *ProduceRequest) encode(e *encoder) {
	e.str(m.Topic)
	e.i32(m.Partition)
	e.i8(m.Acks)
	e.i32(m.TimeoutMs)
	e.i32(int32(len(m.Records)))
	for _, r := range m.Records {
		e.bytes(r.Key)
		e.bytes(r.Value)
	}
}

func (m *ProduceRequest) decode(d *decoder) {
	m.Topic = d.str()
	m.Partition = d.i32()
	m.Acks = d.i8()
	m.TimeoutMs = d.i32()
	m.Records = make([]Record, d.count(8))
	for i := range m.Records {
		m.Records[i] = Record{Key: d.bytes(), Value: d.bytes()}
	}
}

func (m *ProduceResponse) encode(e *encoder) { e.i16(int16(m.Err)); e.i64(m.BaseOffset) }
func (m *ProduceResponse) decode(d *decoder) { m.Err = ErrorCode(d.i16()); m.BaseOffset = d.i64() }

func (m *FetchRequest) encode(e *encoder) {
	e.i32(m.ReplicaID)
	e.str(m.Topic)
	e.i32(m.Partition)
	e.i64(m.Offset)
	e.i32(m.LastFetchedEpoch)
	e.i32(m.MaxBytes)
	e.i32(m.MaxWaitMs)
}

func (m *FetchRequest) decode(d *decoder) {
	m.ReplicaID = d.i32()
	m.Topic = d.str()
	m.Partition = d.i32()
	m.Offset = d.i64()
	m.LastFetchedEpoch = d.i32()
	m.MaxBytes = d.i32()
	m.MaxWaitMs = d.i32()
}

func (m *FetchResponse) encode(e *encoder) {
	e.i16(int16(m.Err))
	e.i64(m.HighWatermark)
	e.i64(m.LogStart)
	e.i32(m.LeaderEpoch)
	e.i32(m.DivergingEpoch)
	e.i64(m.DivergingEnd)
	e.bytes(m.Records)
}

func (m *FetchResponse) decode(d *decoder) {
	m.Err = ErrorCode(d.i16())
	m.HighWatermark = d.i64()
	m.LogStart = d.i64()
	m.LeaderEpoch = d.i32()
	m.DivergingEpoch = d.i32()
	m.DivergingEnd = d.i64()
	m.Records = d.bytes()
}

func (m *MetadataRequest) encode(e *encoder) {
	e.i32(int32(len(m.Topics)))
	for _, t := range m.Topics {
		e.str(t)
	}
}

func (m *MetadataRequest) decode(d *decoder) {
	m.Topics = make([]string, d.count(4))
	for i := range m.Topics {
		m.Topics[i] = d.str()
	}
}

func (m *MetadataResponse) encode(e *encoder) {
	e.i32(m.ControllerID)
	e.i32(int32(len(m.Brokers)))
	for _, b := range m.Brokers {
		e.i32(b.ID)
		e.str(b.Addr)
	}
	e.i32(int32(len(m.Topics)))
	for _, t := range m.Topics {
		e.str(t.Name)
		e.i16(int16(t.Err))
		e.i32(t.MinISR)
		e.i32(int32(len(t.Partitions)))
		for _, p := range t.Partitions {
			e.i32(p.ID)
			e.i32(p.Leader)
			e.i32(p.Epoch)
			e.i32s(p.Replicas)
			e.i32s(p.ISR)
		}
	}
}

func (m *MetadataResponse) decode(d *decoder) {
	m.ControllerID = d.i32()
	m.Brokers = make([]Broker, d.count(8))
	for i := range m.Brokers {
		m.Brokers[i] = Broker{ID: d.i32(), Addr: d.str()}
	}
	m.Topics = make([]TopicMeta, d.count(14))
	for i := range m.Topics {
		t := &m.Topics[i]
		t.Name = d.str()
		t.Err = ErrorCode(d.i16())
		t.MinISR = d.i32()
		t.Partitions = make([]PartitionMeta, d.count(20))
		for j := range t.Partitions {
			t.Partitions[j] = PartitionMeta{ID: d.i32(), Leader: d.i32(), Epoch: d.i32(), Replicas: d.i32s(), ISR: d.i32s()}
		}
	}
}

func (m *CreateTopicRequest) encode(e *encoder) {
	e.str(m.Name)
	e.i32(m.Partitions)
	e.i32(m.ReplicationFactor)
	e.i32(m.MinISR)
	e.i8(boolByte(m.Unclean))
}

func (m *CreateTopicRequest) decode(d *decoder) {
	m.Name = d.str()
	m.Partitions = d.i32()
	m.ReplicationFactor = d.i32()
	m.MinISR = d.i32()
	m.Unclean = d.boolean()
}

func (m *ErrResponse) encode(e *encoder) { e.i16(int16(m.Err)); e.str(m.Message) }
func (m *ErrResponse) decode(d *decoder) { m.Err = ErrorCode(d.i16()); m.Message = d.str() }

func (m *HeartbeatRequest) encode(e *encoder) { e.i32(m.BrokerID); e.str(m.Addr) }
func (m *HeartbeatRequest) decode(d *decoder) { m.BrokerID = d.i32(); m.Addr = d.str() }

func (m *AlterISRRequest) encode(e *encoder) {
	e.str(m.Topic)
	e.i32(m.Partition)
	e.i32(m.LeaderID)
	e.i32(m.LeaderEpoch)
	e.i32s(m.ISR)
}

func (m *AlterISRRequest) decode(d *decoder) {
	m.Topic = d.str()
	m.Partition = d.i32()
	m.LeaderID = d.i32()
	m.LeaderEpoch = d.i32()
	m.ISR = d.i32s()
}

func boolByte(b bool) int8 {
	if b {
		return 1
	}
	return 0
}

// requestHeader: api key i16 | version i16 | correlation id u32.
const requestHeader = 8

// EncodeRequest frames-ready bytes of req with its header.
func EncodeRequest(corr uint32, req Request) []byte {
	e := encoder{b: make([]byte, 0, 64)}
	e.i16(int16(req.Key()))
	e.i16(Version)
	e.i32(int32(corr))
	req.encode(&e)
	return e.b
}

// NewRequest returns an empty request for key, or nil for an unknown key.
func NewRequest(key APIKey) Request {
	switch key {
	case KeyProduce:
		return &ProduceRequest{}
	case KeyFetch:
		return &FetchRequest{}
	case KeyMetadata:
		return &MetadataRequest{}
	case KeyCreateTopic:
		return &CreateTopicRequest{}
	case KeyHeartbeat:
		return &HeartbeatRequest{}
	case KeyAlterISR:
		return &AlterISRRequest{}
	}
	return nil
}

// DecodeRequest decodes a request frame. A header that parses but names an
// unknown key or version returns the correlation id with the error, so the
// server can answer it.
func DecodeRequest(b []byte) (uint32, Request, error) {
	if len(b) < requestHeader {
		return 0, nil, fmt.Errorf("%w: request header", ErrMalformed)
	}
	key := APIKey(int16(binary.BigEndian.Uint16(b)))
	version := int16(binary.BigEndian.Uint16(b[2:]))
	corr := binary.BigEndian.Uint32(b[4:])
	req := NewRequest(key)
	if req == nil {
		return corr, nil, fmt.Errorf("%w: api key %d", ErrUnsupportedVersion, key)
	}
	if version != Version {
		return corr, nil, fmt.Errorf("%w: api key %d version %d", ErrUnsupportedVersion, key, version)
	}
	d := decoder{b: b[requestHeader:]}
	req.decode(&d)
	if err := d.done(); err != nil {
		return corr, nil, fmt.Errorf("api key %d: %w", key, err)
	}
	return corr, req, nil
}

// EncodeResponse returns the bytes of resp with its correlation id.
func EncodeResponse(corr uint32, resp Message) []byte {
	e := encoder{b: make([]byte, 0, 64)}
	e.i32(int32(corr))
	resp.encode(&e)
	return e.b
}

// ResponseCorrelation splits a response frame into its id and body.
func ResponseCorrelation(b []byte) (uint32, []byte, error) {
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("%w: response header", ErrMalformed)
	}
	return binary.BigEndian.Uint32(b), b[4:], nil
}

// DecodeResponse decodes a response body into resp.
func DecodeResponse(body []byte, resp Message) error {
	d := decoder{b: body}
	resp.decode(&d)
	return d.done()
}
