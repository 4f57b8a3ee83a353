package scenarios

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
)

// Autoscale is one region's web-tier scaling policy: the controller keeps
// between Min and Max web nodes behind the region's lb. It scales out when
// the region's p95 is above P95 (the SLO) or the web nodes' utilisation is
// above Utilization, and in when the nodes left would still run below
// Utilization with p95 well under the SLO; one action per Cooldown.
type Autoscale struct {
	Region      string
	Min, Max    int
	P95         time.Duration // 0: not a trigger
	Utilization float64       // busy share of the web nodes' cores; 0: not a trigger
	Cooldown    time.Duration
	Line        int
}

const (
	defaultCooldown = 5 * time.Second
	minCooldown     = time.Second
	// maxAutoscaleNodes bounds a region's web tier: each node is a
	// container on a 2-core host.
	maxAutoscaleNodes = 32
)

// autoscale decodes the scenario's autoscale list: one policy per region,
// each naming a region with an lb and web nodes.
func (v *validator) autoscale(n *yaml.Node) []Autoscale {
	if yamlx.IsNull(n) {
		return nil
	}
	items, ok := v.d.Seq(n, "autoscale")
	if !ok {
		return nil
	}
	var out []Autoscale
	seen := map[string]int{}
	for i, it := range items {
		p := yamlx.Index("autoscale", i)
		m, ok := v.fields(it, p, []string{"region", "min", "max"}, "p95", "utilization", "cooldown")
		if !ok {
			continue
		}
		a := Autoscale{Cooldown: defaultCooldown, Line: it.Line}
		if s, ok := v.d.String(m["region"], yamlx.Field(p, "region")); ok {
			a.Region = s
			if line, dup := seen[s]; dup {
				v.d.Errorf(m["region"], yamlx.Field(p, "region"), "region %q already has a policy on line %d", s, line)
			}
			seen[s] = it.Line
			v.region(m["region"], yamlx.Field(p, "region"), s)
		}
		minN, minOK := v.d.Int(m["min"], yamlx.Field(p, "min"))
		maxN, maxOK := v.d.Int(m["max"], yamlx.Field(p, "max"))
		switch {
		case minOK && (minN < 1 || minN > maxAutoscaleNodes):
			v.d.Errorf(m["min"], yamlx.Field(p, "min"), "must be between 1 and %d, got %d", maxAutoscaleNodes, minN)
		case maxOK && (maxN < 1 || maxN > maxAutoscaleNodes):
			v.d.Errorf(m["max"], yamlx.Field(p, "max"), "must be between 1 and %d, got %d", maxAutoscaleNodes, maxN)
		case minOK && maxOK && maxN < minN:
			v.d.Errorf(m["max"], yamlx.Field(p, "max"), "%d is below min %d", maxN, minN)
		}
		a.Min, a.Max = int(minN), int(maxN)
		boundsOK := minOK && maxOK && minN >= 1 && maxN <= maxAutoscaleNodes && minN <= maxN
		if pn := m["p95"]; pn != nil {
			if d, ok := v.d.Duration(pn, yamlx.Field(p, "p95")); ok {
				if d <= 0 {
					v.d.Errorf(pn, yamlx.Field(p, "p95"), "must be positive")
				}
				a.P95 = d
			}
		}
		if un := m["utilization"]; un != nil {
			if u, ok := v.d.Float(un, yamlx.Field(p, "utilization")); ok {
				if u <= 0 || u > 1 {
					v.d.Errorf(un, yamlx.Field(p, "utilization"), "must be in (0, 1], got %v", u)
				}
				a.Utilization = u
			}
		}
		if m["p95"] == nil && m["utilization"] == nil {
			v.d.Errorf(it, p, "needs a target: p95 (the SLO), utilization, or both")
		}
		if cn := m["cooldown"]; cn != nil {
			if d, ok := v.d.Duration(cn, yamlx.Field(p, "cooldown")); ok {
				if d < minCooldown {
					v.d.Errorf(cn, yamlx.Field(p, "cooldown"), "must be at least %s: the controller decides once a second", minCooldown)
				}
				a.Cooldown = d
			}
		}
		v.autoscaleRegion(m["region"], p, &a, boundsOK)
		out = append(out, a)
	}
	return out
}

// autoscaleRegion checks the policy against the region's planned nodes: an
// lb to register with, web nodes to copy, a planned count within [min, max],
// and cores where utilisation is the target.
func (v *validator) autoscaleRegion(rn *yaml.Node, p string, a *Autoscale, boundsOK bool) {
	if v.top == nil || a.Region == "" {
		return
	}
	if _, ok := v.top.Region(a.Region); !ok {
		return // already reported
	}
	var lbs, webs, cores int
	for _, n := range v.plan {
		if n.Region != a.Region {
			continue
		}
		switch n.Role {
		case "lb":
			lbs++
		case "web":
			webs++
			cores = n.Cores
		}
	}
	path := yamlx.Field(p, "region")
	switch {
	case lbs == 0 || webs == 0:
		v.d.Errorf(rn, path, "region %q needs an lb and at least one web node to scale (has %d lb, %d web)", a.Region, lbs, webs)
	case boundsOK && (webs < a.Min || webs > a.Max):
		v.d.Errorf(rn, path, "region %q starts with %d web nodes, outside min %d and max %d", a.Region, webs, a.Min, a.Max)
	case a.Utilization > 0 && cores == 0:
		v.d.Errorf(rn, path, "utilization needs the region's web nodes to have cores (the capacity model) to be busy on")
	}
}

// fileAutoscale is a policy in the shape the file has (see encode.go), so a
// run's played scenario replays its autoscaling too.
type fileAutoscale struct {
	Region      string  `yaml:"region"`
	Min         int     `yaml:"min"`
	Max         int     `yaml:"max"`
	P95         string  `yaml:"p95,omitempty"`
	Utilization float64 `yaml:"utilization,omitempty"`
	Cooldown    string  `yaml:"cooldown"`
}

func autoscaleToFile(as []Autoscale) []fileAutoscale {
	var out []fileAutoscale
	for _, a := range as {
		f := fileAutoscale{Region: a.Region, Min: a.Min, Max: a.Max, Utilization: a.Utilization, Cooldown: dur(a.Cooldown)}
		if a.P95 > 0 {
			f.P95 = dur(a.P95)
		}
		out = append(out, f)
	}
	return out
}
