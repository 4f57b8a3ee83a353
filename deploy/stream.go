package deploy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/faultline/faultline/topology"
)

// StreamDataPort is where stream workers take tuples from each other.
const StreamDataPort = 7100

// StreamTopic is the broker topic a broker-fed word count reads.
const StreamTopic = "sentences"

func init() {
	// Workers wait for their master, so the order between them does not
	// matter; both after the storage they may write to.
	register("stream", role{order: 40, args: streamArgs})
	// The source of a broker-fed word count: after the brokers, before the
	// stream nodes that read what it writes.
	register("feeder", role{order: 35, args: feederArgs})
}

// StreamMaster is the topology's stream master: its first stream node. Every
// other stream node is a worker.
func StreamMaster(nodes []topology.NodePlan) (topology.NodePlan, bool) {
	for _, n := range nodes {
		if n.Role == "stream" {
			return n, true
		}
	}
	return topology.NodePlan{}, false
}

func streamArgs(n topology.NodePlan, p peerSet) ([]string, error) {
	all := p.all("stream")
	master, _ := StreamMaster(all)
	st := p.top.Stream
	common := []string{"--per-spout", strconv.FormatUint(st.SentencesPerSpout, 10)}
	if st.Rate > 0 {
		common = append(common, "--rate", strconv.FormatFloat(st.Rate, 'f', -1, 64))
	}
	if st.FailRate > 0 {
		common = append(common, "--fail-rate", strconv.FormatFloat(st.FailRate, 'f', -1, 64))
	}
	if st.FromBroker {
		if len(p.all("feeder")) == 0 {
			return nil, fmt.Errorf("stream %s: the spouts are to read a broker topic, but the topology has no feeder node to write it (add {role: feeder, count: 1})", n.Name)
		}
		source, err := brokerSource(n, p)
		if err != nil {
			return nil, err
		}
		common = append(common, source...)
	}
	dbs := make([]string, 0, len(p.all("db")))
	for _, d := range p.all("db") {
		dbs = append(dbs, "http://"+hostPort(d.IP))
	}
	// State in the db survives the master (see topology.Stream); workers
	// write their checkpoints there themselves.
	if st.StateInDB {
		if len(dbs) == 0 {
			return nil, fmt.Errorf("stream %s: stream state is to live in the db, but the topology has no db nodes", n.Name)
		}
		common = append(common, "--db", strings.Join(dbs, ","))
	}
	if n.Name == master.Name {
		if len(all) < 2 {
			return nil, fmt.Errorf("stream %s: the master needs at least one worker (another stream node)", n.Name)
		}
		return append([]string{"master", "--workers", strconv.Itoa(len(all) - 1)}, common...), nil
	}
	args := []string{"worker", "--master", "http://" + hostPort(master.IP),
		"--data-listen", ":" + strconv.Itoa(StreamDataPort),
		"--advertise", netip.AddrPortFrom(n.IP, StreamDataPort).String()}
	switch st.Sink {
	case "console":
		args = append(args, "--sink", "console")
	case "db":
		if len(dbs) == 0 {
			return nil, fmt.Errorf("stream %s: the sink is to write to the db, but the topology has no db nodes", n.Name)
		}
		args = append(args, "--sink", "db", "--sink-db", strings.Join(dbs, ","))
	}
	return append(args, common...), nil
}

// brokerSource is the flags naming the topic word count reads.
func brokerSource(n topology.NodePlan, p peerSet) ([]string, error) {
	brokers := p.all("broker")
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%s %s: word count is to read a broker topic, but the topology has no brokers", n.Role, n.Name)
	}
	addrs := make([]string, len(brokers))
	for i, b := range brokers {
		addrs[i] = netip.AddrPortFrom(b.IP, BrokerPort).String()
	}
	return []string{"--brokers", strings.Join(addrs, ","), "--topic", StreamTopic}, nil
}

// feederArgs: the feeder writes what the spouts will read, so it shares
// their input flags.
func feederArgs(n topology.NodePlan, p peerSet) ([]string, error) {
	st := p.top.Stream
	if !st.FromBroker {
		return nil, fmt.Errorf("feeder %s: only a broker-fed word count has a feeder (set stream.source: broker)", n.Name)
	}
	args := []string{"--per-spout", strconv.FormatUint(st.SentencesPerSpout, 10)}
	if st.Rate > 0 {
		args = append(args, "--rate", strconv.FormatFloat(st.Rate, 'f', -1, 64))
	}
	source, err := brokerSource(n, p)
	if err != nil {
		return nil, err
	}
	return append(args, source...), nil
}
