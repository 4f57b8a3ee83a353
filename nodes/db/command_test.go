package db

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

func TestValidateOps(t *testing.T) {
	zero := uint64(0)
	val := "v"
	tests := []struct {
		name    string
		ops     []dbclient.Op
		wantErr string
	}{
		{"empty", nil, "no ops"},
		{"empty key", []dbclient.Op{{Op: dbclient.OpPut}}, "empty key"},
		{"unknown op", []dbclient.Op{{Op: "incr", Key: "k"}}, "unknown op"},
		{"put with expectation", []dbclient.Op{{Op: dbclient.OpPut, Key: "k", ExpectedVersion: &zero}}, "takes no expectation"},
		{"cas without expectation", []dbclient.Op{{Op: dbclient.OpCAS, Key: "k"}}, "needs expected"},
		{"ok", []dbclient.Op{
			{Op: dbclient.OpPut, Key: "k"}, {Op: dbclient.OpDelete, Key: "k"},
			{Op: dbclient.OpCAS, Key: "k", ExpectedValue: &val},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateOps(tt.ops)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestCommandRoundTrip(t *testing.T) {
	v := uint64(9)
	in := command{reqID: 1<<63 + 5, ops: []dbclient.Op{
		{Op: dbclient.OpPut, Key: "k/ü", Value: "line\nbreak"},
		{Op: dbclient.OpCAS, Key: "c", Value: "x", ExpectedVersion: &v},
	}}
	data, err := encodeCommand(in)
	require.NoError(t, err)
	out, err := decodeCommand(data)
	require.NoError(t, err)
	require.Equal(t, in, out)
	id, ok := commandReqID(data)
	require.True(t, ok)
	require.Equal(t, in.reqID, id)
}

func FuzzDecodeCommand(f *testing.F) {
	seed, _ := encodeCommand(command{reqID: 1, ops: []dbclient.Op{{Op: dbclient.OpPut, Key: "k", Value: "v"}}})
	f.Add(seed)
	f.Add([]byte("12345678{\"ops\":[{\"op\":\"cas\",\"key\":\"k\",\"expected_version\":0}]}"))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := decodeCommand(data)
		if err != nil {
			return
		}
		// Whatever decodes is valid and survives a round trip.
		require.NoError(t, validateOps(cmd.ops))
		again, err := encodeCommand(cmd)
		require.NoError(t, err)
		back, err := decodeCommand(again)
		require.NoError(t, err)
		require.Equal(t, cmd, back)
	})
}
