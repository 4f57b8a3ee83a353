package wan

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLinks(t *testing.T) {
	tests := []struct {
		in      string
		want    []LinkSpec
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "a:b:35ms", want: []LinkSpec{{From: "a", To: "b", Link: Link{Delay: 35 * time.Millisecond}}}},
		{in: "a:b:35ms:2ms:0.01:10mbit, b:a:1s::5%:", want: []LinkSpec{
			{From: "a", To: "b", Link: Link{Delay: 35 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.01, BandwidthBps: 10e6}},
			{From: "b", To: "a", Link: Link{Delay: time.Second, Loss: 0.05}},
		}},
		{in: "a:b", wantErr: true},
		{in: "a:b:soon", wantErr: true},
		{in: "a:b:1ms:1ms:1.5", wantErr: true},
		{in: "a:b:1ms:1ms:0:fast", wantErr: true},
		{in: "a:b:-1ms", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLinks(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseRegions(t *testing.T) {
	got, err := ParseRegions("us=10.1.0.5/24, eu=10.2.0.0/24")
	require.NoError(t, err)
	assert.Equal(t, "10.1.0.0/24", got[0].Prefix.String(), "prefix is masked")
	assert.Equal(t, "eu", got[1].Name)
	for _, bad := range []string{"", "us", "us=10.1.0.0", "us=fd00::/64", "us=10.1.0.0/24,us=10.2.0.0/24"} {
		_, err := ParseRegions(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseBandwidth(t *testing.T) {
	tests := map[string]int64{"10mbit": 10e6, "1.5Gbit": 15e8, "512kbit": 512e3, "1000": 1000, "0": 0, "64bit": 64}
	for in, want := range tests {
		got, err := ParseBandwidth(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "fast", "-1mbit", "1e20gbit"} {
		_, err := ParseBandwidth(bad)
		assert.Error(t, err, bad)
	}
}

func TestLinkSpecJSON(t *testing.T) {
	var s []LinkSpec
	require.NoError(t, json.Unmarshal([]byte(`[{"from":"a","to":"b","delay":"35ms","jitter":"1ms","loss":0.1,"bandwidth":"10mbit"},{"from":"b","to":"a","bandwidth":2000}]`), &s))
	assert.Equal(t, []LinkSpec{
		{From: "a", To: "b", Link: Link{Delay: 35 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.1, BandwidthBps: 10e6}},
		{From: "b", To: "a", Link: Link{BandwidthBps: 2000}},
	}, s)
	out, err := json.Marshal(s)
	require.NoError(t, err)
	var back []LinkSpec
	require.NoError(t, json.Unmarshal(out, &back))
	assert.Equal(t, s, back, "round trip")
	require.Error(t, json.Unmarshal([]byte(`[{"from":"a","to":"b","delay_ms":5}]`), &s), "unknown field")
	require.Error(t, json.Unmarshal([]byte(`[{"from":"a","to":"b","delay":"x"}]`), &s))
}

func FuzzParseLinks(f *testing.F) {
	f.Add("a:b:35ms:2ms:0.01:10mbit,b:a:1s")
	f.Add("a:b:1ms::5%:")
	f.Fuzz(func(t *testing.T, s string) {
		links, err := ParseLinks(s)
		if err != nil {
			return
		}
		for _, l := range links {
			assert.NoError(t, l.Validate())
		}
	})
}
