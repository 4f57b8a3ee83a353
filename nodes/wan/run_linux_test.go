package wan

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunRejectsBadConfig covers the failures that happen before Run
// touches the namespace, so it needs no privileges.
func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no regions", []string{"--regions", ""}, "no regions"},
		{"bad link", []string{"--regions", "a=10.203.77.0/24", "--links", "a:b"}, "want from:to:delay"},
		{"unknown flag", []string{"--region", "a=10.203.77.0/24"}, "flag provided but not defined"},
		{"not attached to a region", []string{"--regions", "a=10.203.77.0/24"}, "no local address in 10.203.77.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FAULTLINE_WAN_REGIONS", "")
			t.Setenv("FAULTLINE_WAN_LINKS", "")
			err := Run(context.Background(), tt.args)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
