# faultline — see README.md. Every target builds what it needs.

# testcontainers-go must not start its reaper (its image cannot be pulled
# here) and must reach mapped ports on this host, not a guessed gateway.
export TESTCONTAINERS_RYUK_DISABLED := true
export TESTCONTAINERS_HOST_OVERRIDE := localhost

GO       ?= go
SCENARIO ?= smoke
FAULTLINE = bin/faultline

.PHONY: all build images scenario scenarios test test-unit test-timing bench bench-go bench-geodns compose down clean

all: build

build:
	$(GO) build -o $(FAULTLINE) ./cmd/faultline

# The node image: one static binary in a FROM-scratch image, built locally.
images: build
	$(FAULTLINE) images

# The main job: one scenario end to end (make scenario SCENARIO=name for others).
scenario: build
	$(FAULTLINE) run scenarios/$(SCENARIO).yaml

# Every scenario in scenarios/, one after another; fails if any fails.
scenarios: build
	@set -e; for f in scenarios/*.yaml; do echo "== $$f"; $(FAULTLINE) run $$f; done

# Every test: unit tests with the race detector and the Docker end-to-end
# tests (real engine, real nodes), including the smoke scenario. One package
# at a time (-p 1): on 2 cores, packages racing each other turned timing
# margins into flakes; sequential, the whole run takes about 10 minutes.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -p 1 -timeout 25m ./...
	$(MAKE) test-timing

# The timing acceptance (RTT ± (1 ms + 5%) at p50, 10 Mbit/s cap ± 10%) holds
# only without the race detector, whose instrumentation slows the emulator's
# packet loop: the tests that measure it, again without -race.
test-timing:
	$(GO) test -count=1 -timeout 10m -run '^TestE2EWANNetwork$$' ./cmd/faultline
	$(GO) test -count=1 -timeout 5m -run '^TestWANIntegration$$' ./nodes/wan

# Only the tests that need no Docker.
test-unit:
	$(GO) test -race -short -count=1 ./...

# Every capability side by side with its real peer, in the same run. Peers
# come from Debian: haproxy, memcached, nsd + dnsperf, etcd-server,
# nats-server (a benchmark whose peer is missing says so and skips).
bench: bench-go bench-geodns

bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

# geodns against NSD serving the same zone, both measured by dnsperf.
bench-geodns:
	bash bench/geodns/run.sh

# Keep the committed docker-compose.yml equal to `faultline compose`.
compose: build
	$(FAULTLINE) compose > docker-compose.yml

down: build
	$(FAULTLINE) down --all

clean:
	rm -rf bin build
