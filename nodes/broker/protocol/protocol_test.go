package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestRoundTrip(t *testing.T) {
	reqs := []Request{
		&ProduceRequest{Topic: "t", Partition: 2, Acks: -1, TimeoutMs: 500, Records: []Record{{Key: []byte("k"), Value: []byte("v")}, {Value: []byte("w")}}},
		&FetchRequest{ReplicaID: 3, Topic: "t", Partition: 1, Offset: 99, LastFetchedEpoch: 4, MaxBytes: 1 << 20, MaxWaitMs: 100},
		&MetadataRequest{Topics: []string{"a", "b"}},
		&CreateTopicRequest{Name: "t", Partitions: 3, ReplicationFactor: 3, MinISR: 2, Unclean: true},
		&HeartbeatRequest{BrokerID: 1, Addr: "127.0.0.1:9"},
		&AlterISRRequest{Topic: "t", Partition: 0, LeaderID: 1, LeaderEpoch: 5, ISR: []int32{1, 2}},
	}
	for _, req := range reqs {
		t.Run(fmt.Sprintf("%T", req), func(t *testing.T) {
			corr, got, err := DecodeRequest(EncodeRequest(42, req))
			require.NoError(t, err)
			assert.Equal(t, uint32(42), corr)
			assert.Equal(t, normalize(req), normalize(got))
		})
	}
}

// normalize makes nil and empty slices compare equal.
func normalize(m Message) string {
	e := encoder{}
	m.encode(&e)
	return fmt.Sprintf("%T %x", m, e.b)
}

func TestResponseRoundTrip(t *testing.T) {
	resps := []Message{
		&ProduceResponse{Err: NotEnoughReplicas, BaseOffset: 7},
		&FetchResponse{HighWatermark: 10, LogStart: 0, LeaderEpoch: 2, DivergingEpoch: 1, DivergingEnd: 5, Records: []byte{1, 2, 3}},
		&MetadataResponse{ControllerID: 2, Brokers: []Broker{{1, "a:1"}}, Topics: []TopicMeta{{Name: "t", MinISR: 2, Partitions: []PartitionMeta{{ID: 0, Leader: 1, Epoch: 3, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}}}}}},
		&ErrResponse{Err: NotController, Message: "x"},
	}
	for _, resp := range resps {
		b := EncodeResponse(9, resp)
		corr, body, err := ResponseCorrelation(b)
		require.NoError(t, err)
		assert.Equal(t, uint32(9), corr)
		got := newLike(resp)
		require.NoError(t, DecodeResponse(body, got))
		assert.Equal(t, resp, got)
	}
}

func newLike(m Message) Message {
	switch m.(type) {
	case *ProduceResponse:
		return &ProduceResponse{}
	case *FetchResponse:
		return &FetchResponse{}
	case *MetadataResponse:
		return &MetadataResponse{}
	}
	return &ErrResponse{}
}

func TestDecodeRequestRejects(t *testing.T) {
	good := EncodeRequest(1, &HeartbeatRequest{BrokerID: 1, Addr: "x"})
	wrongVersion := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(wrongVersion[2:], 9)
	unknownKey := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(unknownKey, 999)
	hugeCount := EncodeRequest(1, &MetadataRequest{})
	binary.BigEndian.PutUint32(hugeCount[requestHeader:], 1<<30)
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"short header", good[:3], ErrMalformed},
		{"truncated body", good[:len(good)-1], ErrMalformed},
		{"trailing bytes", append(append([]byte(nil), good...), 0), ErrMalformed},
		{"wrong version", wrongVersion, ErrUnsupportedVersion},
		{"unknown key", unknownKey, ErrUnsupportedVersion},
		{"huge count", hugeCount, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeRequest(tt.b)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range [][]byte{[]byte("hello"), nil} {
		f, err := Frame(p)
		require.NoError(t, err)
		buf.Write(f)
	}
	_, err := Frame(make([]byte, MaxFrame+1))
	require.Error(t, err)
	got, err := ReadFrame(&buf, nil)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
	got, err = ReadFrame(&buf, nil)
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = ReadFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), nil)
	require.ErrorIs(t, err, ErrMalformed)
}

func TestConnAndServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	release := make(chan struct{})
	go func() {
		served <- Serve(ctx, ln, func(ctx context.Context, req Request) Message {
			switch r := req.(type) {
			case *HeartbeatRequest:
				if r.Addr == "slow" {
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
				return &ErrResponse{Message: fmt.Sprint(r.BrokerID)}
			}
			return &ErrResponse{Err: InvalidRequest}
		})
	}()

	callCtx, callCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer callCancel()
	c, err := Dial(callCtx, ln.Addr().String())
	require.NoError(t, err)

	// a slow call does not hold up the others on the same connection
	slow := make(chan error, 1)
	go func() {
		var resp ErrResponse
		slow <- c.Call(callCtx, &HeartbeatRequest{BrokerID: -1, Addr: "slow"}, &resp)
	}()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp ErrResponse
			assert.NoError(t, c.Call(callCtx, &HeartbeatRequest{BrokerID: int32(i)}, &resp))
			assert.Equal(t, fmt.Sprint(i), resp.Message)
		}()
	}
	wg.Wait()
	close(release)
	require.NoError(t, <-slow)

	// a call whose context ends returns, and the connection stays usable
	short, shortCancel := context.WithCancel(callCtx)
	shortCancel()
	var resp ErrResponse
	require.ErrorIs(t, c.Call(short, &HeartbeatRequest{}, &resp), context.Canceled)
	require.NoError(t, c.Call(callCtx, &HeartbeatRequest{BrokerID: 5}, &resp))

	cancel()
	require.NoError(t, <-served)
	err = c.Call(callCtx, &HeartbeatRequest{}, &resp)
	require.True(t, errors.Is(err, ErrClosed), "got %v", err)
	require.NoError(t, c.Close())
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(EncodeRequest(1, &ProduceRequest{Topic: "t", Records: []Record{{Value: []byte("v")}}}))
	f.Add(EncodeRequest(2, &MetadataRequest{Topics: []string{"x"}}))
	f.Add(EncodeRequest(3, &AlterISRRequest{ISR: []int32{1}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		corr, req, err := DecodeRequest(b)
		if err != nil {
			return
		}
		require.Equal(t, b, EncodeRequest(corr, req), "a decoded request re-encodes to the same bytes")
	})
}

func FuzzDecodeMetadataResponse(f *testing.F) {
	f.Add(EncodeResponse(1, &MetadataResponse{Brokers: []Broker{{1, "a"}}, Topics: []TopicMeta{{Name: "t", Partitions: []PartitionMeta{{Replicas: []int32{1}}}}}})[4:])
	f.Fuzz(func(t *testing.T, b []byte) {
		var m MetadataResponse
		if DecodeResponse(b, &m) != nil {
			return
		}
		e := encoder{}
		m.encode(&e)
		require.Equal(t, b, e.b)
	})
}
