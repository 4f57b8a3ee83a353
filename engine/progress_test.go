package engine

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestConsolePlainPrintsOneLinePerStatus(t *testing.T) {
	var b bytes.Buffer
	c := &console{w: &b}
	c.status([]string{"smoke: load", "us-east 50 rps"})
	c.logf("t=%d inject kill", 15)
	c.status([]string{"smoke: load", "us-east 25 rps"})
	assert.Equal(t, "smoke: load | us-east 50 rps\nt=15 inject kill\nsmoke: load | us-east 25 rps\n", b.String())
}

func TestConsoleLiveRedrawsBlockUnderLog(t *testing.T) {
	var b bytes.Buffer
	c := &console{w: &b, live: true}
	c.status([]string{"a", "b"})
	c.logf("event")
	c.done()
	const up = "\x1b[1A\x1b[2K"
	// The block is drawn, erased for the log line, redrawn under it, and
	// erased at the end so only the log remains.
	assert.Equal(t, "a\nb\n"+up+up+"event\na\nb\n"+up+up, b.String())
	assert.Equal(t, 0, c.drawn)
}

func TestActiveFaultsListsWhatIsInjected(t *testing.T) {
	var a activeFaults
	a.set("kill web-1", 15, true)
	a.set("pause web-2", 16, true)
	a.set("kill web-1", 25, false)
	assert.Equal(t, []string{"pause web-2 (since 16s)"}, a.list())
	assert.False(t, strings.Contains(strings.Join(a.list(), ""), "web-1"))
}
