package main

import (
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/faultline/faultline/chaos"
	"github.com/faultline/faultline/deploy"
	"github.com/faultline/faultline/loadgen"
	"github.com/faultline/faultline/results"
	"github.com/faultline/faultline/scenarios"
	"github.com/faultline/faultline/topology"
)

// scenarioOptions are the registered names a scenario may use.
func scenarioOptions() scenarios.Options {
	return scenarios.Options{FaultKinds: chaos.Kinds(), Workloads: loadgen.Workloads(), Metrics: results.Metrics(),
		HistoryWorkloads: loadgen.HistoryWorkloads(), UnsafeSwitches: deploy.UnsafeSwitches()}
}

// loadScenario parses and validates a scenario and checks that its topology
// can be deployed, before anything is started.
func loadScenario(path string) (*scenarios.Scenario, error) {
	sc, err := scenarios.Load(path, scenarioOptions())
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	if err := deploy.Supported(sc.Topology); err != nil {
		return nil, withCode(exitUsage, err)
	}
	return sc, nil
}

func loadTopology(path string) (*topology.Topology, error) {
	if path == "" {
		return topology.Default(), nil
	}
	top, err := topology.Load(path)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	if err := deploy.Supported(top); err != nil {
		return nil, withCode(exitUsage, err)
	}
	return top, nil
}

// isTopologyFile tells topology files from scenario files by their top-level
// keys: only a topology has `regions`.
func isTopologyFile(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		// Let the real parser report it with file and line.
		return filepath.Base(filepath.Dir(path)) == "topology", nil
	}
	_, ok := top["regions"]
	return ok, nil
}

func validateFile(path string) error {
	isTop, err := isTopologyFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if isTop {
		_, err = loadTopology(path)
	} else {
		_, err = loadScenario(path)
	}
	return err
}
