package loadgen

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		code uint16
		err  string
		want string
	}{
		{200, "", ""},
		{204, "", ""},
		{503, "503 Service Unavailable", Kind5xx},
		{502, "502 Bad Gateway", Kind5xx},
		{404, "404 Not Found", Kind4xx},
		{429, "429 Too Many Requests", Kind4xx},
		{0, `Get "http://127.0.0.1:1/api/hello": dial tcp 127.0.0.1:1: connect: connection refused`, KindRefused},
		{0, `Get "http://x/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`, KindTimeout},
		{0, `Get "http://x/": dial tcp 10.0.0.1:80: i/o timeout`, KindTimeout},
		{0, `Get "http://x/": read tcp 127.0.0.1:5->127.0.0.1:6: read: connection reset by peer`, KindReset},
		{0, `Get "http://x/": EOF`, KindReset},
		{200, `unexpected EOF`, KindReset},
		{0, `Get "http://nope/": dial tcp: lookup nope on 127.0.0.53:53: no such host`, KindDNS},
		{0, `Get "http://nope/": dial tcp: lookup nope: i/o timeout`, KindDNS},
		{0, `something odd`, KindOther},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Classify(tt.code, tt.err), "%d %q", tt.code, tt.err)
	}
}

func FuzzClassify(f *testing.F) {
	f.Add(uint16(0), "connection refused")
	f.Add(uint16(500), "")
	f.Add(uint16(200), "EOF")
	kinds := map[string]bool{"": true, KindCheck: true, KindTimeout: true, KindRefused: true, KindReset: true,
		Kind5xx: true, Kind4xx: true, KindDNS: true, KindOther: true}
	f.Fuzz(func(t *testing.T, code uint16, errText string) {
		k := Classify(code, errText)
		if !kinds[k] {
			t.Fatalf("unknown kind %q", k)
		}
		if code >= 400 && k != Kind5xx && k != Kind4xx {
			t.Fatalf("status %d classified %q", code, k)
		}
		if code < 400 && errText == "" && k != "" {
			t.Fatalf("success classified %q", k)
		}
	})
}
