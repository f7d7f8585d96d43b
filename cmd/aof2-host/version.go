package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aof2/aof2/internal/buildinfo"
	"github.com/aof2/aof2/pluginapi"
)

// versionInfo is what `aof2-host version --json` prints: the build and
// the versions of the two contracts this host speaks (docs/compatibility.md).
type versionInfo struct {
	buildinfo.Info
	ClientAPI      string `json:"client_api"`
	PluginContract string `json:"plugin_contract"`
}

func hostVersion() versionInfo {
	return versionInfo{Info: buildinfo.Read(), ClientAPI: buildinfo.ClientAPI,
		PluginContract: fmt.Sprintf("v%d.%d", pluginapi.ContractMajor, pluginapi.ContractMinor)}
}

// runVersion prints the build and contract versions.
func runVersion(_ context.Context, e *cmdEnv) error {
	asJSON := e.flags.Bool("json", false, "print JSON")
	if _, err := e.parse(0, 0); err != nil {
		return err
	}
	v := hostVersion()
	if *asJSON {
		return writeJSON(e, v)
	}
	fmt.Fprintf(e.stdout, "aof2-host %s\nclient API: %s\nplugin contract: %s\n", v.Info, v.ClientAPI, v.PluginContract)
	return nil
}

// buildInfoMetric is aof2_build_info{version,revision,goversion} = 1, the
// usual Prometheus build-information gauge (join it on instance to label
// other series with the build).
func buildInfoMetric(b buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "aof2_build_info",
		Help:        "The running aof2-host build: version, VCS revision and Go version (always 1).",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}
