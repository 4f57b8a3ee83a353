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
		brokers := p.all("broker")
		if len(brokers) == 0 {
			return nil, fmt.Errorf("stream %s: the spouts are to read a broker topic, but the topology has no brokers", n.Name)
		}
		addrs := make([]string, len(brokers))
		for i, b := range brokers {
			addrs[i] = netip.AddrPortFrom(b.IP, BrokerPort).String()
		}
		common = append(common, "--brokers", strings.Join(addrs, ","), "--topic", StreamTopic)
	}
	// State in the db survives the master (see topology.Stream); workers
	// write their checkpoints there themselves.
	if st.StateInDB {
		dbs := p.all("db")
		if len(dbs) == 0 {
			return nil, fmt.Errorf("stream %s: stream state is to live in the db, but the topology has no db nodes", n.Name)
		}
		urls := make([]string, len(dbs))
		for i, d := range dbs {
			urls[i] = "http://" + hostPort(d.IP)
		}
		common = append(common, "--db", strings.Join(urls, ","))
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
	return append(args, common...), nil
}
