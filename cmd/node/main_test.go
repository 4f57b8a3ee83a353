package main

import (
	"context"
	"debug/elf"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no args", nil, 2},
		{"unknown role", []string{"nope"}, 2},
		{"bad role flag", []string{"web", "--bogus"}, 2},
		{"lb with an unknown policy", []string{"lb", "--policy", "random-ish"}, 2},
		{"bad health flag", []string{"health", "--bogus"}, 2},
		{"bad health url", []string{"health", "--url", "::"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := run(context.Background(), tt.args)
			assert.Equal(t, tt.want, code)
			require.Error(t, err)
		})
	}
	_, err := run(context.Background(), []string{"nope"})
	assert.ErrorContains(t, err, "loadgen", "lists the roles")
}

func TestHealth(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name, url string
		want      int
	}{
		{"200", ok.URL, 0},
		{"503", sick.URL, 1},
		{"refused", closed, 1},
		{"hangs past 1 s", hang.URL, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _ := run(context.Background(), []string{"health", "--url", tt.url})
			assert.Equal(t, tt.want, code)
		})
	}
}

// Builds the real binary and checks what the image relies on: it is static
// (FROM scratch has no libc), serves a role, passes its own health check,
// and exits 0 on SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "node")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	f, err := elf.Open(bin)
	require.NoError(t, err)
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "binary must be static")
	}
	f.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node := exec.CommandContext(ctx, bin, "web", "--listen", addr, "--node", "web-test-1", "--region", "test")
	require.NoError(t, node.Start())
	exited := make(chan error, 1)
	go func() { exited <- node.Wait() }()

	healthURL := "http://" + addr + "/healthz"
	require.Eventually(t, func() bool {
		return exec.CommandContext(ctx, bin, "health", "--url", healthURL).Run() == nil
	}, 20*time.Second, 20*time.Millisecond, "node health passes once serving")

	require.NoError(t, node.Process.Signal(syscall.SIGTERM))
	err = <-exited
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		t.Fatalf("exit %d after SIGTERM", exitErr.ExitCode())
	}
	require.NoError(t, err)
	assert.Error(t, exec.Command(bin, "health", "--url", healthURL).Run(), "health fails once stopped")
}
