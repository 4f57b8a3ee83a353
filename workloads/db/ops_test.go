package db

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/db/dbclient"
)

func TestRegionsEndpoints(t *testing.T) {
	r := Regions{"us": {"u1", "u2"}, "eu": {"e1"}}
	tests := []struct {
		client     int
		wantRegion string
		wantEps    []string
	}{
		{0, "eu", []string{"e1"}},
		{1, "us", []string{"u1", "u2"}},
		{2, "eu", []string{"e1"}},
		{3, "us", []string{"u2", "u1"}}, // the region's second client starts on its second node
		{5, "us", []string{"u1", "u2"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.client), func(t *testing.T) {
			region, eps := r.endpoints(tt.client)
			assert.Equal(t, tt.wantRegion, region)
			assert.Equal(t, tt.wantEps, eps)
		})
	}
	assert.Equal(t, []string{"u1", "u2"}, r["us"], "rotation copies")
}

func TestValidation(t *testing.T) {
	ok := Regions{"a": {"http://127.0.0.1:1"}}
	tests := []struct {
		name string
		err  error
	}{
		{"fine", func() error { _, err := NewRegister(ok); return err }()},
		{"fine set", func() error { _, err := NewSet(ok, "p-"); return err }()},
	}
	for _, tt := range tests {
		require.NoError(t, tt.err, tt.name)
	}
	bad := []struct {
		name string
		err  error
	}{
		{"no regions", func() error { _, err := NewRegister(Regions{}); return err }()},
		{"empty region", func() error { _, err := NewSet(Regions{"a": nil}, "p-"); return err }()},
		{"no clients", func() error { _, err := NewSet(ok, "p-", Clients(0)); return err }()},
		{"no timeout", func() error { _, err := NewRegister(ok, WithOptions(OpTimeout(0))); return err }()},
		{"no keys", func() error { _, err := NewRegister(ok, Keys()); return err }()},
		{"bad level", func() error { _, err := NewRegister(ok, ReadLevel("eventual")); return err }()},
		{"zero mix", func() error { _, err := NewRegister(ok, Mix(0, 0, 0)); return err }()},
	}
	for _, tt := range bad {
		assert.Error(t, tt.err, tt.name)
	}
}

func TestIndefinite(t *testing.T) {
	// A refused connection reached no server; other transport errors may
	// have, and the server's own verdict stands.
	refused := func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		_, err = net.DialTimeout("tcp", addr, time.Second)
		require.Error(t, err)
		return fmt.Errorf("put: %w", err)
	}()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"refused", refused, false},
		{"timeout", fmt.Errorf("put: %w", errors.New("context deadline exceeded")), true},
		{"server says unknown", &dbclient.StatusError{Code: 503, Body: dbclient.ErrorBody{Indefinite: true}}, true},
		{"server says failed", &dbclient.StatusError{Code: 503}, false},
		{"conflict", &dbclient.ConflictError{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, indefinite(tt.err))
		})
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	h := &loadgen.MemHistory{}
	exp := "old"
	in := Input{Key: "k", Value: "v", Expect: &exp}
	out := Output{OK: true, Found: true, Value: "v", Version: 7}
	record(h, 3, KindCAS, in, out, nil, time.Unix(1, 0), time.Unix(2, 0))
	gotIn, gotOut, err := Decode(h.Operations()[0])
	require.NoError(t, err)
	assert.Equal(t, in, gotIn)
	assert.Equal(t, out, gotOut)
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"key":"k","consistency":"stale"}`), []byte(`{"found":true,"value":"v","version":3}`))
	f.Add([]byte(`{"key":"k","value":"v","expect":"o"}`), []byte(`{"indefinite":true}`))
	f.Add([]byte(`{`), []byte(``))
	f.Fuzz(func(t *testing.T, in, out []byte) {
		op := loadgen.Operation{Kind: KindRead, Input: in, Output: out}
		gotIn, gotOut, err := Decode(op)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same values.
		op.Input, _ = json.Marshal(gotIn)
		op.Output, _ = json.Marshal(gotOut)
		in2, out2, err := Decode(op)
		require.NoError(t, err)
		require.Equal(t, gotIn, in2)
		require.Equal(t, gotOut, out2)
	})
}
