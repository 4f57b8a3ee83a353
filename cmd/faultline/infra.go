package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/faultline/faultline/runtime"
	"github.com/faultline/faultline/runtime/docker"
)

// dockerSession is what every engine-facing command starts with: a context
// that ends on SIGINT/SIGTERM and a connected runtime; done releases both.
func dockerSession() (context.Context, *docker.Runtime, func(), error) {
	ctx, stop := signalContext()
	rt, err := openDocker(ctx)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return ctx, rt, func() { _ = rt.Close(); stop() }, nil
}

func openDocker(ctx context.Context) (*docker.Runtime, error) {
	rt, err := docker.New(ctx)
	if err != nil {
		return nil, withCode(exitInfra, fmt.Errorf("%w (is the Docker engine running?)", err))
	}
	return rt, nil
}

// imageLabel records which node binary an image holds, so a run rebuilds the
// image only when the binary changed.
const imageLabel = "faultline.node-sha256"

const nodeDockerfile = "FROM scratch\nCOPY node /node\nENTRYPOINT [\"/node\"]\n"

// ensureImage makes sure the node image holds the node binary of this source
// tree. Inside the source tree (the usual case) it builds the binary with the
// Go toolchain — a no-op when nothing changed — and rebuilds the image only if
// the binary differs from the image's. Outside a source tree it uses an
// existing image as it is.
func ensureImage(ctx context.Context, rt *docker.Runtime, tag string, log func(string, ...any)) error {
	root, ok := moduleRoot()
	if !ok {
		if _, exists, err := rt.ImageLabels(ctx, tag); err == nil && exists {
			return nil
		}
		return withCode(exitInfra, fmt.Errorf("image %s does not exist and no faultline source tree is here to build it (run `make images` in one)", tag))
	}
	bin := filepath.Join(root, "build", "node", "node")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/node")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return withCode(exitInfra, fmt.Errorf("build node binary: %w\n%s", err, out))
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return withCode(exitInfra, fmt.Errorf("read node binary: %w", err))
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	labels, exists, err := rt.ImageLabels(ctx, tag)
	if err != nil {
		return withCode(exitInfra, fmt.Errorf("inspect image %s: %w", tag, err))
	}
	if exists && labels[imageLabel] == want {
		return nil
	}
	log("building image %s", tag)
	if err := os.WriteFile(filepath.Join(root, "build", "node", "Dockerfile"), []byte(nodeDockerfile), 0o644); err != nil {
		return withCode(exitInfra, err)
	}
	files := map[string][]byte{"Dockerfile": []byte(nodeDockerfile), "node": data}
	if err := rt.BuildImage(ctx, tag, files, map[string]string{imageLabel: want}); err != nil {
		return withCode(exitInfra, err)
	}
	return nil
}

// moduleRoot finds the faultline source tree containing the working directory.
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/faultline/faultline\n") {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// sweepOrphans removes what earlier controllers left behind when they were
// killed too hard to clean up (SIGKILL, OOM, power loss): resources whose
// owner process is gone. Resources without an owner (from `faultline up` or
// docker-compose) are left for `faultline down`.
func sweepOrphans(ctx context.Context, rt runtime.Runtime, log func(string, ...any)) error {
	cs, err := rt.List(ctx, nil)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	nets, err := rt.ListNetworks(ctx, nil)
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	dead := map[string]bool{}
	consider := func(l runtime.Labels) {
		run, ok := l[runtime.LabelRun]
		if !ok {
			return
		}
		if pid, err := strconv.Atoi(l[runtime.LabelOwnerPID]); err == nil && !alive(pid) {
			dead[run] = true
		}
	}
	for _, c := range cs {
		consider(c.Labels)
	}
	for _, n := range nets {
		consider(n.Labels)
	}
	for run := range dead {
		log("removing leftovers of run %s (its controller is gone)", run)
		if err := rt.RemoveByLabel(ctx, runtime.Labels{runtime.LabelRun: run}); err != nil {
			return fmt.Errorf("remove leftovers of run %s: %w", run, err)
		}
	}
	return nil
}

// alive reports whether a process with pid exists on this machine.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
