package docker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/faultline/faultline/runtime"
)

func TestContainerConfig(t *testing.T) {
	spec := runtime.ContainerSpec{
		Name:    "wan-1",
		Image:   "faultline/node:dev",
		Cmd:     []string{"wan"},
		Env:     map[string]string{"B": "2", "A": "1"},
		Labels:  runtime.Labels{runtime.LabelRun: "r"},
		Ports:   []int{8080},
		CapAdd:  []string{"NET_ADMIN"},
		Devices: []string{"/dev/net/tun"},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
		Networks: []runtime.Attachment{
			{Network: "us-east", IP: "10.202.1.254"},
			{Network: "eu-west", IP: "10.202.2.254"},
		},
		Health: &runtime.HealthCheck{Cmd: []string{"/node", "health"}, Interval: 200 * time.Millisecond},
	}
	cfg, host, netcfg, err := containerConfig(spec)
	require.NoError(t, err)

	assert.Equal(t, []string{"A=1", "B=2"}, cfg.Env, "sorted, so equal specs give equal configs")
	assert.Equal(t, []string{"CMD", "/node", "health"}, cfg.Healthcheck.Test, "exec form")
	assert.Equal(t, 200*time.Millisecond, cfg.Healthcheck.Interval)
	assert.Equal(t, defaultHealthTimeout, cfg.Healthcheck.Timeout)

	port := network.MustParsePort("8080/tcp")
	assert.Contains(t, cfg.ExposedPorts, port)
	require.Len(t, host.PortBindings[port], 1)
	assert.Equal(t, "127.0.0.1", host.PortBindings[port][0].HostIP.String(), "published on loopback only")
	assert.Empty(t, host.PortBindings[port][0].HostPort, "the engine picks the port")

	assert.Equal(t, []container.DeviceMapping{{PathOnHost: "/dev/net/tun", PathInContainer: "/dev/net/tun", CgroupPermissions: "rwm"}}, host.Devices)
	assert.Equal(t, container.NetworkMode("us-east"), host.NetworkMode)
	require.Len(t, netcfg.EndpointsConfig, 1, "API 1.41 takes one network at create")
	assert.Equal(t, "10.202.1.254", netcfg.EndpointsConfig["us-east"].IPAMConfig.IPv4Address.String())
}

func TestContainerConfigHealth(t *testing.T) {
	tests := []struct {
		cmd  []string
		want []string
	}{
		{[]string{"/node", "health"}, []string{"CMD", "/node", "health"}},
		{[]string{"CMD", "/node", "health"}, []string{"CMD", "/node", "health"}},
		{[]string{"CMD-SHELL", "true"}, []string{"CMD-SHELL", "true"}},
		{[]string{"NONE"}, []string{"NONE"}},
	}
	for _, tt := range tests {
		cfg, _, _, err := containerConfig(runtime.ContainerSpec{Health: &runtime.HealthCheck{Cmd: tt.cmd}})
		require.NoError(t, err)
		assert.Equal(t, tt.want, cfg.Healthcheck.Test)
		assert.Equal(t, defaultHealthInterval, cfg.Healthcheck.Interval, "never docker's 30 s default")
	}
}

func TestContainerConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		spec runtime.ContainerSpec
	}{
		{"port zero", runtime.ContainerSpec{Ports: []int{0}}},
		{"port too big", runtime.ContainerSpec{Ports: []int{70000}}},
		{"bad address", runtime.ContainerSpec{Networks: []runtime.Attachment{{Network: "n", IP: "10.1.1"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := containerConfig(tt.spec)
			assert.Error(t, err)
		})
	}
}

func TestReadBuildStream(t *testing.T) {
	tests := []struct {
		name, stream, wantErr string
	}{
		{"success", `{"stream":"Step 1/2 : FROM scratch\n"}{"stream":"Successfully built abc\n"}`, ""},
		{"error in stream", `{"stream":"Step 2/2 : COPY x /x\n"}{"errorDetail":{"message":"COPY failed"},"error":"COPY failed"}`, "COPY failed (after: Step 2/2 : COPY x /x)"},
		{"truncated", `{"stream":"Step 1/2`, "read build output"},
		{"empty", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := readBuildStream(strings.NewReader(tt.stream))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// FuzzReadBuildStream: any engine output is consumed without panicking, and
// a stream that carries an error message never reads as success.
func FuzzReadBuildStream(f *testing.F) {
	f.Add(`{"stream":"ok\n"}`)
	f.Add(`{"errorDetail":{"message":"boom"}}`)
	f.Add(`{"stream":"a"}{"aux":{"ID":"sha256:1"}}`)
	f.Fuzz(func(t *testing.T, s string) {
		err := readBuildStream(strings.NewReader(s))
		withErr := readBuildStream(strings.NewReader(s + `{"errorDetail":{"message":"boom"}}`))
		if err == nil {
			assert.Error(t, withErr, "a trailing error after a clean stream is reported")
		}
	})
}

// The daemon's words when the port it picked to publish is held by another
// program: the start is retried and gets another port. Other errors are not.
func TestPortTakenIsRetried(t *testing.T) {
	taken := errors.New(`Error response from daemon: driver failed programming external connectivity on endpoint fl-x-loadgen-origin-1 (7af4): Error starting userland proxy: listen tcp4 127.0.0.1:33191: bind: address already in use`)
	assert.True(t, portTaken(taken))
	assert.False(t, portTaken(errors.New("Error response from daemon: No such container: fl-x")))
}
