// Package host is the host's side of the backend plugin contract:
// launching a plugin binary through hashicorp/go-plugin ([Launch]),
// attaching to one served by hand or in-process ([Attach],
// [ServeInProcess]), and keeping one alive ([Supervisor]), with the
// Prometheus metrics that go with it (aof_plugin_restarts_total).
//
// It is a separate package from pluginapi so that the package a backend
// author imports is only the contract: a plugin binary links neither
// go-plugin's client side nor the Prometheus client. Importers in the
// repository name it pluginhost where "host" would be ambiguous.
//
// # Lifecycle
//
// [Launch] builds a fresh go-plugin client per start, with a minimal
// environment, an optional SHA-256 pin and a parent-death signal, then runs
// GetInfo → [CheckInfo] → Configure → Probe. Start-up failures are a
// *[StartError] whose Kind is one sentinel ([ErrStartTimeout],
// [ErrBadHandshake], ...), so callers branch with errors.Is.
//
// # Supervision, retries and the breaker
//
// A [Supervisor] is itself a pluginapi.Backend. It detects a crash from
// the process exit, fails the calls in flight with the retryable
// pluginapi.ErrPluginCrashed, relaunches with backoff, and after repeated
// crashes opens a circuit breaker: calls then fail fast with a
// *[BreakerOpenError] matching [ErrBreakerOpen]. It never re-issues a
// call. core/tier2, above it, owns retries and has its own breaker whose
// sentinel is the same [ErrBreakerOpen]; docs/adr-tier2.md ("Retries and
// the breaker, end to end") tells the whole story.
package host
