package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// BuildImage builds tag from files (which must include a Dockerfile) with
// the legacy builder: without buildx, BuildKit would try to pull a frontend.
// Build errors arrive in the response stream, so it is read to the end.
func (r *Runtime) BuildImage(ctx context.Context, tag string, files map[string][]byte, labels map[string]string) error {
	if _, ok := files["Dockerfile"]; !ok {
		return fmt.Errorf("build %s: no Dockerfile in the context", tag)
	}
	buildCtx, err := tarball(files)
	if err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	res, err := r.cli.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	defer res.Body.Close()
	if err := readBuildStream(res.Body); err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	return nil
}

// tarball is an in-memory build context; files are executable so a copied
// binary can run.
func tarball(files map[string][]byte) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			return nil, fmt.Errorf("tar %s: %w", name, err)
		}
		if _, err := tw.Write(files[name]); err != nil {
			return nil, fmt.Errorf("tar %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	return &buf, nil
}

// readBuildStream consumes a build's JSON message stream and returns the
// first error in it, with the last output lines for context.
func readBuildStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	var tail []string
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read build output: %w", err)
		}
		if line := strings.TrimSpace(m.Stream); line != "" {
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
		if m.Error != nil {
			return fmt.Errorf("%s (after: %s)", m.Error.Message, strings.Join(tail, " | "))
		}
	}
}

// ImageLabels reports whether tag exists and its labels, so callers can
// skip rebuilding an image that is up to date.
func (r *Runtime) ImageLabels(ctx context.Context, tag string) (map[string]string, bool, error) {
	res, err := r.cli.ImageInspect(ctx, tag)
	if cerrdefs.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("inspect image %s: %w", tag, err)
	}
	if res.Config == nil {
		return map[string]string{}, true, nil
	}
	return res.Config.Labels, true, nil
}
