package main

import (
	"github.com/faultline/faultline/nodes"
	"github.com/faultline/faultline/nodes/lb"
	"github.com/faultline/faultline/nodes/loadgen"
	"github.com/faultline/faultline/nodes/wan"
	"github.com/faultline/faultline/nodes/web"
)

// Every role the binary can run; adding a role is one line here.
func init() {
	nodes.Register("lb", lb.Run)
	nodes.Register("loadgen", loadgen.Run)
	nodes.Register("wan", wan.Run)
	nodes.Register("web", web.Run)
}
