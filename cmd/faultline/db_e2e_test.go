package main

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/runtime"
)

// TestE2EDBUnsafeSwitchBites runs a short leader-kill scenario with the
// db's unsafe early-ack switch on: the checkers must catch it (lost writes
// or a non-linearizable history) and the run must exit 1. The same scenario
// without the switch is scenarios/db-leader-kill.yaml's job (make scenarios).
func TestE2EDBUnsafeSwitchBites(t *testing.T) {
	rt := dockerRuntime(t)
	out := t.TempDir()
	code := run([]string{"run", "--unsafe", "db-early-ack", "testdata/db-unsafe.yaml", "--out", out})
	dir := onlyRunDir(t, out)
	sum, err := results.ReadSummary(dir)
	require.NoError(t, err)
	require.Empty(t, sum.Error, "the run itself worked")
	require.NotNil(t, sum.DB, "a db section")
	assert.Equal(t, exitFail, code)
	assert.Equal(t, []string{"db-early-ack"}, sum.DB.Unsafe)
	caught := sum.DB.LostWrites > 0 || (sum.DB.Linearizable != nil && !*sum.DB.Linearizable)
	assert.True(t, caught, "lost writes %d, linearizable %v", sum.DB.LostWrites, sum.DB.Linearizable)
	lin := "unknown"
	if sum.DB.Linearizable != nil {
		lin = fmt.Sprint(*sum.DB.Linearizable)
	}
	t.Logf("unsafe run: lost writes %d of %d acknowledged, linearizable %s", sum.DB.LostWrites, sum.DB.Set.Acknowledged, lin)
	assert.FileExists(t, dir+"/db-linearizability.html")
	cs, ns := leftovers(t, rt, runtime.LabelRun, sum.RunID)
	assert.Empty(t, cs)
	assert.Empty(t, ns)
}
