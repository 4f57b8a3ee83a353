#!/usr/bin/env bash
# Side-by-side benchmark: faultline geodns vs NSD serving an equivalent static
# zone, both on 127.0.0.1, measured with dnsperf in the same run.
#
# Per server: a saturation run (DURATION s, no rate limit) gives qps; a
# latency run (DURATION s at RATE qps, per-query latencies) gives p50/p99.
# Traffic stays on loopback: geodns health-checks its own /healthz.
#
# Env: DURATION (10) RATE (30000) CLIENTS (4) OUTSTANDING (100)
#      GEODNS_PORT (15353) GEODNS_HTTP (15380) NSD_PORT (15354)
set -euo pipefail

DURATION=${DURATION:-10}
RATE=${RATE:-30000}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-100}
GEODNS_PORT=${GEODNS_PORT:-15353}
GEODNS_HTTP=${GEODNS_HTTP:-15380}
NSD_PORT=${NSD_PORT:-15354}

for tool in dnsperf nsd; do
	if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
		echo "missing $tool; install with: apt-get update && apt-get install -y dnsperf nsd" >&2
		exit 2
	fi
done
NSD=$(command -v nsd || echo /usr/sbin/nsd)

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/geodns-bench.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "building geodns..."
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/geodns" ./bench/geodns)

"$work/geodns" --dns-listen "127.0.0.1:$GEODNS_PORT" --listen "127.0.0.1:$GEODNS_HTTP" \
	--region "name=local,subnet=127.0.0.0/8,lb=127.0.0.1:$GEODNS_HTTP,addrs=10.1.0.10" \
	--region "name=remote,subnet=10.2.0.0/16,lb=127.0.0.1:$GEODNS_HTTP,addrs=10.2.0.10" \
	--rtt local:remote=70 --nameserver ns1.faultline.test.=10.1.0.53 \
	>"$work/geodns.log" 2>&1 &
geodns_pid=$!
pids+=("$geodns_pid")

# The same answers as a static zone: SOA, NS + glue, app A.
cat >"$work/faultline.test.zone" <<'EOF'
$ORIGIN faultline.test.
$TTL 5
@   IN SOA ns1.faultline.test. hostmaster.faultline.test. 1 3600 600 86400 5
@   IN NS  ns1.faultline.test.
ns1 IN A   10.1.0.53
app IN A   10.1.0.10
EOF
cat >"$work/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$NSD_PORT
    port: $NSD_PORT
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$work"
    pidfile: "$work/nsd.pid"
    database: ""
    zonelistfile: "$work/zone.list"
    xfrdfile: "$work/xfrd.state"
    xfrdir: "$work"
    logfile: "$work/nsd.log"
    verbosity: 1
    # Response rate limiting would throttle a benchmark from one address.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: faultline.test.
    zonefile: faultline.test.zone
EOF
"$NSD" -d -c "$work/nsd.conf" >"$work/nsd.out" 2>&1 &
nsd_pid=$!
pids+=("$nsd_pid")

echo "app.faultline.test. A" >"$work/queries"

wait_ready() { # name port
	for _ in $(seq 50); do
		if dnsperf -s 127.0.0.1 -p "$2" -d "$work/queries" -n 1 -t 1 2>/dev/null | grep -q "NOERROR 1 "; then
			return 0
		fi
		sleep 0.1
	done
	echo "$1 did not answer on 127.0.0.1:$2" >&2
	cat "$work/$1.log" "$work/$1.out" 2>/dev/null >&2 || true
	exit 3
}
wait_ready geodns "$GEODNS_PORT"
wait_ready nsd "$NSD_PORT"

tree() { # a pid and all its descendants (NSD runs as xfrd > main > server)
	local c
	echo "$1"
	for c in $(pgrep -P "$1" || true); do tree "$c"; done
}

# CPU seconds (user+system) a process tree has used so far.
cpu_s() {
	local total=0 p
	for p in $(tree "$1"); do
		# Fields after "pid (comm) ": the name may hold spaces ("nsd: server 1").
		total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
	done
	awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t/hz}'
}

declare -A QPS P50 P99 LQPS CPU
run() { # name port pid
	local name=$1 port=$2 pid=$3 c0 c1
	c0=$(cpu_s "$pid")
	dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" \
		>"$work/$name.sat" 2>&1
	c1=$(cpu_s "$pid")
	QPS[$name]=$(awk '/Queries per second/{printf "%.0f", $4}' "$work/$name.sat")
	CPU[$name]=$(awk -v a="$c0" -v b="$c1" -v d="$DURATION" 'BEGIN{printf "%.0f%%", 100*(b-a)/d}')
	dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" \
		-Q "$RATE" -v >"$work/$name.lat" 2>&1
	LQPS[$name]=$(awk '/Queries per second/{printf "%.0f", $4}' "$work/$name.lat")
	read -r P50[$name] P99[$name] < <(awk '/^> /{print $NF * 1000}' "$work/$name.lat" | sort -g |
		awk '{v[NR]=$1} END{if (NR == 0) {print "n/a n/a"; exit} printf "%.2f %.2f\n", v[int(NR*0.50)+1], v[int(NR*0.99)+1]}')
}

echo "dnsperf: ${DURATION}s per run, $CLIENTS clients, $OUTSTANDING outstanding; latency runs at $RATE qps"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run geodns "$GEODNS_PORT" "$geodns_pid"
run nsd "$NSD_PORT" "$nsd_pid"

printf '\n%-8s %12s %10s %14s %9s %9s\n' server max_qps cpu "qps@$RATE" p50_ms p99_ms
for s in geodns nsd; do
	printf '%-8s %12s %10s %14s %9s %9s\n' "$s" "${QPS[$s]}" "${CPU[$s]}" "${LQPS[$s]}" "${P50[$s]}" "${P99[$s]}"
done
awk -v g="${QPS[geodns]}" -v n="${QPS[nsd]}" 'BEGIN{printf "\ngeodns/nsd throughput ratio: %.2f (goal >= 0.50)\n", g/n}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
