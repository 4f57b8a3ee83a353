package main

import (
	"github.com/faultline/faultline/geodns"
	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/broker"
	"github.com/faultline/faultline/nodes/broker/mirror"
	"github.com/faultline/faultline/nodes/cache"
	"github.com/faultline/faultline/nodes/db"
	"github.com/faultline/faultline/nodes/edge"
	"github.com/faultline/faultline/nodes/lb"
	"github.com/faultline/faultline/nodes/loadgen"
	"github.com/faultline/faultline/nodes/stream"
	"github.com/faultline/faultline/nodes/wan"
	"github.com/faultline/faultline/nodes/web"
)

// Every role the binary can run; adding a role is one line here. A role
// runnable here is not yet deployable by a topology until deploy/ knows how
// to wire it to its peers.
func init() {
	nodes.Register("broker", broker.Run)
	nodes.Register("cache", cache.Run)
	nodes.Register("db", db.Run)
	nodes.Register("edge", edge.Run)
	nodes.Register("feeder", stream.RunFeeder)
	nodes.Register("geodns", geodns.Run)
	nodes.Register("lb", lb.Run)
	nodes.Register("loadgen", loadgen.Run)
	nodes.Register("mirror", mirror.Run)
	nodes.Register("stream", stream.Run)
	nodes.Register("wan", wan.Run)
	nodes.Register("web", web.Run)
}
