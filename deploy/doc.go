// Package deploy holds AOF2's operations assets and their checks:
//
//   - grafana/manifest-replay.json — the "Tiered AOF2 / Manifest Replay"
//     dashboard (panel 12: replay chunk lag, warn 3 s / critical 5 s;
//     panel 13: replay journal lag, warn 1024 / critical 4096 bytes);
//   - grafana/tier-health.json — the "Tiered AOF2 / Tier Health" dashboard;
//   - prometheus/aof2-alerts.yml — alert rules, with promtool unit tests in
//     prometheus/aof2-alerts_test.yml.
//
// The package has no API. Its tests check that the dashboards are well
// formed and carry the panels and thresholds the design requires, that the
// rules carry severity, summary, description and a runbook section in
// README.md, and that every metric and label an expression names is one the
// engine really exports: they open an engine (a supervised fs plugin as
// tier 2, a coordinator, the store, one Prometheus registry), move data
// through the tiers, and compare against what the registry holds. `make
// check-deploy` adds promtool's parse of every expression and the alert
// unit tests. README.md says how to load the assets and what each alert
// means.
package deploy
