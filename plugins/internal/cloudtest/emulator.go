package cloudtest

import "maps"

// ConformanceSettings are a plugin's settings for a conformance or
// large-object run against a local emulator: cfg with max_attempts 2. The plugins default to
// one attempt per request (core/tier2 owns retries, docs/adr-tier2.md), so a
// connection the emulator drops (an idle keep-alive it closes, or a refusal
// under a loaded CI machine) surfaces as a retryable BACKEND_UNAVAILABLE
// that the host would retry and the suite, which checks the contract and
// not the retry policy, would report as a failure. The retry policy itself
// is tested by each plugin's TestOneRequestPerCall and core/tier2.
func ConformanceSettings(cfg map[string]string) map[string]string {
	out := maps.Clone(cfg)
	if out == nil {
		out = map[string]string{}
	}
	out["max_attempts"] = "2"
	return out
}
