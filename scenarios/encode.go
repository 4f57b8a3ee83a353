package scenarios

import (
	"time"

	"github.com/faultline/faultline/topology"
)

// The file shape, for writing a scenario back out with its topology inline
// and every default made explicit: a run directory keeps this file, and
// running it again replays the run.
type fileScenario struct {
	Name        string             `yaml:"name"`
	Description string             `yaml:"description,omitempty"`
	Topology    *topology.Topology `yaml:"topology"`
	Seed        int64              `yaml:"seed"`
	Duration    string             `yaml:"duration"`
	Load        []fileLoad         `yaml:"load,omitempty"`
	History     []fileHistory      `yaml:"history,omitempty"`
	SLO         *fileSLO           `yaml:"slo,omitempty"`
	Faults      []fileFault        `yaml:"faults,omitempty"`
	Nemesis     *fileNemesis       `yaml:"nemesis,omitempty"`
	Checks      []fileCheck        `yaml:"checks,omitempty"`
	Unsafe      []string           `yaml:"unsafe,omitempty,flow"`
	Autoscale   []fileAutoscale    `yaml:"autoscale,omitempty"`
}

type fileLoad struct {
	Regions  []string    `yaml:"regions,flow"`
	Rate     float64     `yaml:"rate,omitempty"`
	Ramp     *fileRamp   `yaml:"ramp,omitempty,flow"`
	Step     *fileStep   `yaml:"step,omitempty,flow"`
	Phases   []filePhase `yaml:"phases,omitempty"`
	Users    *fileUsers  `yaml:"users,omitempty,flow"`
	Workload string      `yaml:"workload"`
	Timeout  string      `yaml:"timeout"`
}

type fileRamp struct {
	From float64 `yaml:"from"`
	To   float64 `yaml:"to"`
}

type fileStep struct {
	From  float64 `yaml:"from"`
	By    float64 `yaml:"by"`
	Every string  `yaml:"every"`
	Max   float64 `yaml:"max"`
}

type filePhase struct {
	For  string    `yaml:"for"`
	Rate float64   `yaml:"rate,omitempty"`
	Ramp *fileRamp `yaml:"ramp,omitempty,flow"`
}

type fileUsers struct {
	N           int    `yaml:"n"`
	Think       string `yaml:"think"`
	Exponential bool   `yaml:"exponential"`
}

type fileSLO struct {
	P99       string  `yaml:"p99"`
	ErrorRate float64 `yaml:"error_rate"`
}

type fileTarget struct {
	Node   string `yaml:"node,omitempty"`
	Role   string `yaml:"role,omitempty"`
	Region string `yaml:"region,omitempty"`
	Count  int    `yaml:"count,omitempty"`
	Pick   string `yaml:"pick,omitempty"`
}

type fileFault struct {
	At     string     `yaml:"at"`
	Kind   string     `yaml:"kind"`
	Target fileTarget `yaml:"target,flow"`
	For    string     `yaml:"for"`
}

type fileNemesis struct {
	Every   string     `yaml:"every"`
	For     string     `yaml:"for"`
	Start   string     `yaml:"start"`
	Kinds   []string   `yaml:"kinds,flow"`
	Targets fileTarget `yaml:"targets,flow"`
}

type fileCheck struct {
	Name   string   `yaml:"name"`
	Metric string   `yaml:"metric"`
	Region string   `yaml:"region,omitempty"`
	Min    *float64 `yaml:"min,omitempty"`
	Max    *float64 `yaml:"max,omitempty"`
}

// MarshalYAML writes the scenario in the shape Parse reads.
func (s *Scenario) MarshalYAML() (any, error) {
	out := fileScenario{Name: s.Name, Description: s.Description, Topology: s.Topology, Seed: s.Seed, Duration: dur(s.Duration)}
	for _, l := range s.Load {
		fl := fileLoad{Regions: l.Regions, Rate: l.Rate, Workload: l.Workload, Timeout: dur(l.Timeout)}
		if r := l.Ramp; r != nil {
			fl.Ramp = &fileRamp{From: r.From, To: r.To}
		}
		if st := l.Step; st != nil {
			fl.Step = &fileStep{From: st.From, By: st.By, Every: dur(st.Every), Max: st.Max}
		}
		for _, p := range l.Phases {
			fp := filePhase{For: dur(p.For), Rate: p.From}
			if p.From != p.To {
				fp = filePhase{For: dur(p.For), Ramp: &fileRamp{From: p.From, To: p.To}}
			}
			fl.Phases = append(fl.Phases, fp)
		}
		if u := l.Users; u != nil {
			fl.Users = &fileUsers{N: u.N, Think: dur(u.Think), Exponential: u.Exponential}
		}
		out.Load = append(out.Load, fl)
	}
	out.History = historyToFile(s.History)
	if s.Topology != nil {
		out.Unsafe = s.Topology.Unsafe
	}
	if s.SLO != nil {
		out.SLO = &fileSLO{P99: dur(s.SLO.P99), ErrorRate: s.SLO.ErrorRate}
	}
	for _, f := range s.Faults {
		out.Faults = append(out.Faults, fileFault{At: dur(f.At), Kind: f.Kind, Target: toFile(f.Target), For: dur(f.For)})
	}
	if n := s.Nemesis; n != nil {
		out.Nemesis = &fileNemesis{Every: dur(n.Every), For: dur(n.For), Start: dur(n.Start), Kinds: n.Kinds, Targets: toFile(n.Targets)}
	}
	for _, c := range s.Checks {
		out.Checks = append(out.Checks, fileCheck{Name: c.Name, Metric: c.Metric, Region: c.Region, Min: c.Min, Max: c.Max})
	}
	out.Autoscale = autoscaleToFile(s.Autoscale)
	return out, nil
}

func toFile(t Target) fileTarget {
	if t.Node != "" {
		return fileTarget{Node: t.Node}
	}
	if t.Pick != "" {
		return fileTarget{Role: t.Role, Pick: t.Pick}
	}
	return fileTarget(t)
}

func dur(d time.Duration) string { return d.String() }
