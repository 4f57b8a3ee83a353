package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIndefiniteDial(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("i/o timeout")}
	read := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, false},
		{"refused", fmt.Errorf("PUT /kv/k: %w", syscall.ECONNREFUSED), false},
		{"dial timeout: nothing sent", fmt.Errorf("PUT /kv/k: %w", dial), false},
		{"reset after sending", fmt.Errorf("PUT /kv/k: %w", read), true},
		{"timeout waiting for the answer", fmt.Errorf("PUT /kv/k: %w", context.DeadlineExceeded), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, indefinite(tc.err))
		})
	}
}
