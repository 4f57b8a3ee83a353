// Package dbtest starts in-process db nodes for other packages' tests.
package dbtest

import (
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	dbnode "github.com/faultline/faultline/nodes/db"
)

// OneNode starts a single-voter db on loopback (real raft and bolt, no
// fsync wait beyond the defaults), stopped when t ends, and returns its
// base URL once it takes writes.
func OneNode(t testing.TB) string {
	t.Helper()
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(nil)
	peer := dbnode.Peer{ID: "d1", RaftAddr: rl.Addr().String(), HTTPAddr: srv.Listener.Addr().String()}
	node, err := dbnode.Start(dbnode.Config{ID: "d1", RaftAddr: peer.RaftAddr, DataDir: filepath.Join(t.TempDir(), "d1"),
		Peers: []dbnode.Peer{peer}, Voter: true, Bootstrap: true, Logger: hclog.NewNullLogger()}, rl)
	require.NoError(t, err)
	srv.Config.Handler = node.Handler()
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, node.Close())
	})
	require.Eventually(t, func() bool { return node.Status().CommitIndex > 0 }, 30*time.Second, 20*time.Millisecond)
	return srv.URL
}
