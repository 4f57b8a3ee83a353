package topology

import (
	"strconv"
	"time"
)

// The file shape, for writing a topology back out (a run directory keeps the
// exact topology it ran, so the run can be replayed from it alone).
type fileTopology struct {
	Name    string       `yaml:"name"`
	Image   string       `yaml:"image"`
	Regions []fileRegion `yaml:"regions"`
	Links   []fileLink   `yaml:"links,omitempty"`
	DNS     *fileDNS     `yaml:"dns,omitempty"`
	Stream  *fileStream  `yaml:"stream,omitempty"`
}

type fileStream struct {
	SentencesPerSpout uint64  `yaml:"sentences_per_spout,omitempty"`
	Rate              float64 `yaml:"rate,omitempty"`
	FailRate          float64 `yaml:"fail_rate,omitempty"`
	State             string  `yaml:"state,omitempty"`
	Source            string  `yaml:"source,omitempty"`
	Sink              string  `yaml:"sink,omitempty"`
}

type fileDNS struct {
	Zone          string `yaml:"zone,omitempty"`
	TTL           string `yaml:"ttl,omitempty"`
	CheckInterval string `yaml:"check_interval,omitempty"`
	CheckTimeout  string `yaml:"check_timeout,omitempty"`
	Fall          int    `yaml:"fall,omitempty"`
	Rise          int    `yaml:"rise,omitempty"`
}

type fileRegion struct {
	Name   string      `yaml:"name"`
	Subnet string      `yaml:"subnet"`
	Nodes  []fileGroup `yaml:"nodes"`
}

type fileGroup struct {
	Role        string `yaml:"role"`
	Count       int    `yaml:"count"`
	Cores       int    `yaml:"cores,omitempty"`
	ServiceTime string `yaml:"service_time,omitempty"`
	Voter       *bool  `yaml:"voter,omitempty"` // written only when false
}

type fileLink struct {
	Between   []string `yaml:"between,flow"`
	RTT       string   `yaml:"rtt"`
	Jitter    string   `yaml:"jitter,omitempty"`
	Loss      float64  `yaml:"loss,omitempty"`
	Bandwidth string   `yaml:"bandwidth,omitempty"`
}

// MarshalYAML writes the topology in the shape Parse reads.
func (t *Topology) MarshalYAML() (any, error) {
	out := fileTopology{Name: t.Name, Image: t.Image}
	for _, r := range t.Regions {
		fr := fileRegion{Name: r.Name, Subnet: r.Subnet.String(), Nodes: []fileGroup{}}
		for _, g := range r.Nodes {
			fg := fileGroup{Role: g.Role, Count: g.Count, Cores: g.Cores}
			if g.NonVoter {
				fg.Voter = new(bool)
			}
			if g.ServiceTime > 0 {
				fg.ServiceTime = g.ServiceTime.String()
			}
			fr.Nodes = append(fr.Nodes, fg)
		}
		out.Regions = append(out.Regions, fr)
	}
	for _, l := range t.Links {
		fl := fileLink{Between: []string{l.A, l.B}, RTT: l.RTT.String(), Loss: l.Loss, Bandwidth: FormatBandwidth(l.BandwidthBps)}
		if l.Jitter > 0 {
			fl.Jitter = l.Jitter.String()
		}
		out.Links = append(out.Links, fl)
	}
	if t.DNS != (DNS{}) {
		out.DNS = &fileDNS{Zone: t.DNS.Zone, TTL: durationOrEmpty(t.DNS.TTL), CheckInterval: durationOrEmpty(t.DNS.CheckInterval),
			CheckTimeout: durationOrEmpty(t.DNS.CheckTimeout), Fall: t.DNS.Fall, Rise: t.DNS.Rise}
	}
	if t.Stream != (Stream{}) {
		out.Stream = &fileStream{SentencesPerSpout: t.Stream.SentencesPerSpout, Rate: t.Stream.Rate, FailRate: t.Stream.FailRate, Sink: t.Stream.Sink}
		if t.Stream.StateInDB {
			out.Stream.State = "db"
		}
		if t.Stream.FromBroker {
			out.Stream.Source = "broker"
		}
	}
	return out, nil
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// FormatBandwidth writes bits per second the way ParseBandwidth reads them,
// in the largest unit that keeps it whole; "" for unlimited.
func FormatBandwidth(bps int64) string {
	if bps <= 0 {
		return ""
	}
	for _, u := range []struct {
		div  int64
		name string
	}{{1e9, "gbit"}, {1e6, "mbit"}, {1e3, "kbit"}} {
		if bps%u.div == 0 {
			return strconv.FormatInt(bps/u.div, 10) + u.name
		}
	}
	return strconv.FormatInt(bps, 10) + "bit"
}
