// Package broker holds the broker history workloads the loadgen runs:
// broker-produce publishes numbered messages and records every
// acknowledgement with its partition and offset; broker-consume reads
// every partition from offset 0 and records what it saw, with the high
// watermark each fetch was told. The broker checkers
// (checkers/broker) judge the two together.
package broker

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/nodes/broker/client"
)

// Workload names, as a scenario's history entries name them.
const (
	WorkloadProduce = "broker-produce"
	WorkloadConsume = "broker-consume"
)

// Topic is the topic every broker workload of a run uses; the run's
// brokers are its own, so it always starts empty.
const Topic = "events"

// BrokerPort is where brokers speak their protocol; a spec's endpoints
// name the nodes' HTTP port, which the workloads swap for this one.
const BrokerPort = 9092

// Options are the settings a scenario gives the broker workloads in a
// history entry's `options`:
//
//	history:
//	  - {workload: broker-produce, clients: 4, options: {acks: all, partitions: 6, replication: 3, min_insync: 2}}
//
// The topic settings are read by whoever creates the topic (the engine,
// before the run's clock starts); acks only by the producer.
type Options struct {
	Acks              int8  // client.AcksAll, AcksLeader or AcksNone
	Partitions        int32 // default 6
	ReplicationFactor int32 // 0: the brokers' default (3, or the cluster size)
	MinISR            int32 // 0: the brokers' default (1)
	// LocalOnly (bootstrap: local) keeps a client on its own region's
	// brokers: with region-local clusters joined by mirrors, another
	// region's brokers are another cluster.
	LocalOnly bool
}

// optionKeys are the settings ParseOptions knows.
var optionKeys = []string{"acks", "partitions", "replication", "min_insync", "bootstrap"}

// ParseOptions reads a history entry's options; unknown keys and bad
// values are errors.
func ParseOptions(in map[string]string) (Options, error) {
	o := Options{Acks: client.AcksAll, Partitions: 6}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := in[k]
		if !slices.Contains(optionKeys, k) {
			return o, fmt.Errorf("option %q: unknown (known: %s)", k, strings.Join(optionKeys, ", "))
		}
		if k == "bootstrap" {
			if v != "local" && v != "all" {
				return o, fmt.Errorf("option bootstrap: %q: want local or all", v)
			}
			o.LocalOnly = v == "local"
			continue
		}
		if k == "acks" {
			switch v {
			case "all", "-1":
				o.Acks = client.AcksAll
			case "1":
				o.Acks = client.AcksLeader
			case "0":
				o.Acks = client.AcksNone
			default:
				return o, fmt.Errorf("option acks: %q: want all, 1 or 0", v)
			}
			continue
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 || n > 1000 || (k == "partitions" && n == 0) {
			return o, fmt.Errorf("option %s: %q: want a whole number in [%d, 1000]", k, v, map[bool]int{true: 1, false: 0}[k == "partitions"])
		}
		switch k {
		case "partitions":
			o.Partitions = int32(n)
		case "replication":
			o.ReplicationFactor = int32(n)
		case "min_insync":
			o.MinISR = int32(n)
		}
	}
	if o.MinISR > 0 && o.ReplicationFactor > 0 && o.MinISR > o.ReplicationFactor {
		return o, fmt.Errorf("option min_insync %d is above replication %d", o.MinISR, o.ReplicationFactor)
	}
	return o, nil
}

// specAddrs are the brokers a workload's client starts from.
func specAddrs(spec loadgen.HistorySpec, o Options) ([]string, error) {
	if o.LocalOnly {
		return brokerAddrs(spec.Local)
	}
	return brokerAddrs(spec.Local, spec.Remote)
}

// brokerAddrs turns a spec's node endpoints ("http://10.0.1.10:8080") into
// broker addresses ("10.0.1.10:9092").
func brokerAddrs(endpoints ...[]string) ([]string, error) {
	var out []string
	for _, eps := range endpoints {
		for _, ep := range eps {
			u, err := url.Parse(ep)
			if err != nil || u.Hostname() == "" {
				return nil, fmt.Errorf("endpoint %q: want http://host:port", ep)
			}
			out = append(out, net.JoinHostPort(u.Hostname(), strconv.Itoa(BrokerPort)))
		}
	}
	return out, nil
}
