package topology

import (
	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/internal/yamlx"
)

// decodeVoter reads a db group's `voter` (default true). Placement is data:
// voters spread over regions make a stretched cluster; voters in one region
// with `voter: false` groups elsewhere make far read replicas.
func decodeVoter(d *yamlx.Decoder, gm map[string]*yaml.Node, gp string, g *NodeGroup) {
	vn := gm["voter"]
	if vn == nil {
		return
	}
	path := yamlx.Field(gp, "voter")
	var voter bool
	if vn.Kind != yaml.ScalarNode || vn.ShortTag() != "!!bool" || vn.Decode(&voter) != nil {
		d.Errorf(vn, path, "must be true or false, not %q", vn.Value)
		return
	}
	if g.Role != "" && g.Role != "db" {
		d.Errorf(vn, path, "only db nodes vote, not %s", g.Role)
		return
	}
	g.NonVoter = !voter
}

// checkDBVoters reports a topology with db nodes but no voter among them:
// such a cluster could never elect a leader.
func checkDBVoters(d *yamlx.Decoder, t *Topology, n *yaml.Node, path string) {
	dbNodes, voters := 0, 0
	for _, r := range t.Regions {
		for _, g := range r.Nodes {
			if g.Role != "db" {
				continue
			}
			dbNodes += g.Count
			if !g.NonVoter {
				voters += g.Count
			}
		}
	}
	if dbNodes > 0 && voters == 0 {
		d.Errorf(n, path, "%d db node(s) but no voter: a cluster without voters can never elect a leader", dbNodes)
	}
}

// Voter reports whether a planned db node votes (its group's `voter`).
func (t *Topology) Voter(n NodePlan) bool {
	r, ok := t.Region(n.Region)
	if !ok {
		return false
	}
	for _, g := range r.Nodes {
		if g.Role == n.Role {
			return !g.NonVoter
		}
	}
	return false
}
