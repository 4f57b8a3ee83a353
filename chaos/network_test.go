package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/faultline/faultline/nodes/wan"
)

func TestApplyLink(t *testing.T) {
	base := []wan.LinkSpec{
		{From: "a", To: "b", Link: wan.Link{Delay: 35 * time.Millisecond}},
		{From: "b", To: "a", Link: wan.Link{Delay: 35 * time.Millisecond}},
	}
	rtt, loss, bw := 200*time.Millisecond, 0.1, int64(1e6)
	for _, tc := range []struct {
		name string
		dirs [][2]string
		c    LinkChange
		want []wan.LinkSpec
	}{
		{"rtt both ways", [][2]string{{"a", "b"}, {"b", "a"}}, LinkChange{RTT: &rtt}, []wan.LinkSpec{
			{From: "a", To: "b", Link: wan.Link{Delay: 100 * time.Millisecond}},
			{From: "b", To: "a", Link: wan.Link{Delay: 100 * time.Millisecond}},
		}},
		{"loss one way keeps delay", [][2]string{{"a", "b"}}, LinkChange{Loss: &loss}, []wan.LinkSpec{
			{From: "a", To: "b", Link: wan.Link{Delay: 35 * time.Millisecond, Loss: 0.1}},
			base[1],
		}},
		{"unconfigured pair starts clean", [][2]string{{"a", "c"}}, LinkChange{BandwidthBps: &bw}, append(base[:2:2],
			wan.LinkSpec{From: "a", To: "c", Link: wan.Link{BandwidthBps: 1e6}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]wan.LinkSpec(nil), base...)
			assert.Equal(t, tc.want, ApplyLink(base, tc.dirs, tc.c))
			assert.Equal(t, before, base, "the original, restored on heal, is untouched")
		})
	}
}

// A scenario's link fault names a target region and a peer region; the
// CLI names two targets. Both are the same link.
func TestNewLinkTakesTargetAndPeer(t *testing.T) {
	rtt := time.Second
	for _, spec := range []Spec{
		{Kind: "link", Targets: []string{"a", "b"}, Link: LinkChange{RTT: &rtt}},
		{Kind: "link", Targets: []string{"a"}, Peers: []string{"b"}, Link: LinkChange{RTT: &rtt}},
	} {
		f, err := newLink(Env{}, spec)
		if assert.NoError(t, err) {
			assert.Equal(t, []string{"a", "b"}, f.(*link).spec.Targets)
		}
	}
	_, err := newLink(Env{}, Spec{Kind: "link", Targets: []string{"a"}, Link: LinkChange{RTT: &rtt}})
	assert.ErrorContains(t, err, "needs two different regions")
}
