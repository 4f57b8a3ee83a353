package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/faultline/faultline/nodes/db/dbclient"
)

func TestDBLeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		sts  map[string]dbclient.Status
		want string
	}{
		{"none answered", nil, ""},
		{"electing", map[string]dbclient.Status{"a": {Role: "candidate", Term: 3}, "b": {Role: "follower", Term: 2}}, ""},
		{"one leader", map[string]dbclient.Status{"a": {Role: "follower", Term: 3}, "b": {Role: "leader", Term: 3}}, "b"},
		// A deposed leader cut off from the others still says so, in an
		// older term: the newer term's leader is the one to kill.
		{"deposed leader", map[string]dbclient.Status{"a": {Role: "leader", Term: 2}, "b": {Role: "leader", Term: 5}}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := dbLeader(tc.sts)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.want != "", ok)
		})
	}
}
