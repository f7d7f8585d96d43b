package main

import "context"

var commands = []command{
	{name: "serve", summary: "run a node: the store, tiering and the tier-2 plugin behind the gRPC and HTTP client API",
		long: `Configuration comes from defaults, then the HCL file (-config, $AOF2_CONFIG or
./aof2.hcl), then AOF2_* variables, then flags; 'aof2-host serve -h' lists every key.
The defaults give a working single node: data in ./data, the fs plugin as tier 2 in
./data/tier2, gRPC on 127.0.0.1:7400 and HTTP on 127.0.0.1:7401. SIGTERM drains
in-flight requests, flushes and stops the plugin.`,
		example: "aof2-host serve -config /etc/aof2/aof2.hcl -listen-http 127.0.0.1:8080",
		run:     runServe},
	{name: "restore", summary: "rebuild the data directory from tier 2 alone after a lost disk: every uploaded record, same ids",
		long: `Offline: stop the host first, and make this node the prefix's writer first
(aof2-host takeover): restore refuses otherwise. Launches the configured tier-2 plugin as serve does
(-config, AOF2_* variables; -data-dir and -plugin-dir override) and, for every stream
the prefix holds (or those of -stream) that the data directory does not, installs
the stream's manifest from its newest verified snapshot and chunks and records every
segment tier 2 holds as cold: no segment bytes are downloaded; reads hydrate them.
Segment ids tier 2 does not hold (records acknowledged but never uploaded, up to the
stream's reservation) are recorded as lost, so that no id is ever handed out twice.
Streams already in the data directory are skipped. Interrupted, it is rerun to the
same result; serve refuses to start until it finished. See docs/adr-restore.md and
the disaster-recovery runbook (deploy/README.md).`,
		example: "aof2-host restore -config /etc/aof2/aof2.hcl\naof2-host restore -data-dir ./data -stream 42 --json",
		run:     runRestore},
	{name: "takeover", summary: "make this node the writer of the tier-2 prefix: the previous writer is fenced (exit 5 from serve means another node holds it)",
		long: `Offline: this node's host must be stopped. Reads the prefix's writer record
(_aof2/writer) and replaces it with the next epoch and this data directory's node id,
on condition that it did not change meanwhile; the data directory records the epoch.
The previous writer stops writing to the prefix at its next tier-2 write (appends
there answer FENCED; reads go on). For a lost node: takeover, then restore, then
serve. See docs/adr-fencing.md and deploy/README.md.`,
		example: "aof2-host takeover -config /etc/aof2/aof2.hcl",
		run:     runTakeover},
	{name: "promote", summary: "turn a stopped read replica into the prefix's writer: takeover, then the writer's history restored in place",
		long: `Offline: stop the replica's host first. Makes this data directory's node the
prefix's writer (as aof2-host takeover: the previous writer, if it still runs, is fenced
at its next tier-2 write), sets the replica's streams aside (<data_dir>/replica.old)
and restores every stream from tier 2 in their place (as aof2-host restore: the
writer's manifest history, every uploaded segment cold, the ids it may have used and
not uploaded recorded as lost), then removes the replica's copy. The warm cache stays.
Interrupted, it is rerun to the same result. Then start the host with role = "writer".
See docs/tiering.md#read-replicas and deploy/README.md.`,
		example: "aof2-host promote -config /etc/aof2/replica.hcl",
		run:     runPromote},
	{name: "dump", summary: "print the tier table: every segment of every stream and where its copies are",
		long:    "Online with -addr (live budgets, queues and hydration latency), else offline from the data directory's manifests.",
		example: "aof2-host dump -data-dir ./data --json | jq '.tiers'",
		run:     runDump},
	{name: "segments list", summary: "list segments, optionally of one stream and one tier",
		example: "aof2-host segments list -stream 42 -tier 2",
		run:     runSegmentsList},
	{name: "segments retire", summary: "delete a stream's segments below an id through retention, on a running host (each delete recorded first, after its upload)",
		long:    "As retention.max_age or max_bytes would: oldest first, each segment's delete committed to the manifest and tier 2's history before any copy goes, a segment not uploaded yet waited for, the newest segment always kept. Records below are gone (reads answer not found). The request lives in the running host: a restart ends it (what was deleted stays deleted).",
		example: "aof2-host segments retire -addr 127.0.0.1:7400 -stream 42 -below 100",
		run:     runSegmentsRetire},
	{name: "manifest inspect", summary: "show a stream's manifest chunks, snapshots and (with -records) decoded records",
		example: "aof2-host manifest inspect -stream 42 -records",
		run:     runManifestInspect},
	{name: "manifest verify", summary: "recompute manifest CRCs, check invariants and that tier 2 holds what the manifest says; exit 4 on findings",
		long: `Offline, on the data directory. Locally: chunk and record CRCs, chunk chain, snapshots,
retention, the JSON view's parity. Then it launches the configured tier-2 plugin as
serve does (-config, AOF2_* variables; -data-dir and -plugin-dir override) and Heads
every object the manifest places in tier 2: each segment at the key and with the etag
the manifest recorded (a segment whose delete is pending may be gone), each manifest
chunk flagged uploaded or already removed locally at its layout key; size, checksum
and identity metadata must agree. A missing object is a tier2_missing finding, a
different or damaged one tier2_mismatch, each naming its key. Tier 2 unreachable
(plugin missing, start or probe failing, requests failing) is an error (exit 4), not
"ok". -skip-tier2 verifies the local manifests only and says so. Stop the host first
for a definitive answer: objects it deletes or re-uploads meanwhile can show up.`,
		example: "aof2-host manifest verify -config /etc/aof2/aof2.hcl\naof2-host manifest verify -data-dir ./data -stream 42 -skip-tier2 --json",
		run:     runManifestVerify},
	{name: "manifest snapshot", summary: "snapshot a stream's manifest now; tier 2 gets it at the next scan and trims what two snapshots cover",
		example: "aof2-host manifest snapshot -addr 127.0.0.1:7400 -stream 42",
		run:     runManifestSnapshot},
	{name: "manifest parity", summary: "compare each stream's JSON view with its manifest log (before enabling log-only)",
		example: "aof2-host manifest parity -stream 42 --json",
		run:     runManifestParity},
	{name: "cluster status", summary: "a cluster node's view: Raft state, term, indexes, the leader and every member",
		long:    "Asks the node -addr names (not the leader): a follower's view shows how far behind it is (commit vs applied, last contact). See docs/adr-replication.md and the cluster runbook in deploy/README.md.",
		example: "aof2-host cluster status -addr 127.0.0.1:7400 --json",
		run:     runClusterStatus},
	{name: "cluster add", args: "<node-id>=<raft host:port>", summary: "add a node to the cluster as a voter (through the leader)",
		long:    "Start the new node first with a cluster block without peers (or with join); it waits to be added. Then add it from any member: the request follows the leader.",
		example: "aof2-host cluster add -addr 127.0.0.1:7400 n4=10.0.0.4:7500",
		run:     runClusterAdd},
	{name: "cluster remove", args: "<node-id>", summary: "remove a node from the cluster (through the leader)",
		long:    "Removing a dead node lets the others keep a majority with one node fewer; replace it by adding a new node.",
		example: "aof2-host cluster remove -addr 127.0.0.1:7400 n3",
		run:     runClusterRemove},
	{name: "cluster transfer-leader", args: "[node-id]", summary: "hand leadership to a node, or to the most up-to-date follower",
		example: "aof2-host cluster transfer-leader -addr 127.0.0.1:7400 n2",
		run:     runClusterTransfer},
	{name: "seal", summary: "seal a stream's active segment so it can move to tiers 1 and 2",
		example: "aof2-host seal -addr 127.0.0.1:7400 -stream 42",
		run:     runSeal},
	{name: "flush", summary: "make every appended record of a stream durable",
		example: "aof2-host flush -addr 127.0.0.1:7400 -stream 42",
		run:     runFlush},
	{name: "hydrate", summary: "bring a stream's segments back into tier 0 (progress bar on a terminal)",
		example: "aof2-host hydrate -addr 127.0.0.1:7400 -stream 42 -from 10 -to 20",
		run:     runHydrate},
	{name: "repair", summary: "accept the loss of a damaged stream's damaged records (-accept-loss), or offline of what a damaged node WAL held (-node-wal -accept-loss), so appends go on",
		example: "aof2-host repair -addr 127.0.0.1:7400 -stream 42 -accept-loss",
		run:     runRepair},
	{name: "scrub", summary: "verify every copy of every sealed segment now, repairing from verified copies (progress bar on a terminal; exit 4 if damage remains)",
		example: "aof2-host scrub -addr 127.0.0.1:7400 -stream 42",
		run:     runScrub},
	{name: "uploads pause", summary: "hold a running host's segment uploads to tier 2 back (tier-2 maintenance, an incident) until resumed or restarted",
		long:    "Manifest chunks, snapshots and segment-id reservations still go to tier 2, so writers keep going; under the tier2 eviction policy tier 0 keeps every sealed segment meanwhile and a long pause fills it (writers then wait, as when tier 2 is down). aof_tier2_uploads_paused says 1.",
		example: "aof2-host uploads pause -addr 127.0.0.1:7400",
		run:     runUploads(true)},
	{name: "uploads resume", summary: "let a running host's segment uploads go on again",
		example: "aof2-host uploads resume -addr 127.0.0.1:7400",
		run:     runUploads(false)},
	{name: "plugins check", summary: "launch the configured tier-2 plugin, negotiate, print its capabilities and probe it",
		example: "aof2-host plugins check -config examples/aof2-s3.hcl -write",
		run:     runPluginsCheck},
	pluginsNewCommand,
	{name: "bench", summary: "durable appends through the client API from N clients: records/s, MB/s, latency p50/p99",
		example: "aof2-host bench -addr 127.0.0.1:7400 -clients 64 -size 1024 -duration 30s",
		run:     runBench},
	{name: "config reference", summary: "print every configuration key: HCL path, AOF2_* variable, flag, type, default and meaning",
		long:    "-format markdown prints docs/config.md (make docs regenerates it; the tests fail when it is stale).",
		example: "aof2-host config reference | less\naof2-host config reference -format markdown > docs/config.md",
		run:     runConfigReference},
	{name: "config validate", summary: "load the configuration as serve would (file, AOF2_* variables, serve's flags) and check it; -check-plugin also launches the plugin",
		long: `Takes every flag serve takes, so a unit file's command line can be checked as is
before a restart. Exit 0 and a summary when serve would accept it; exit 1 with every
problem (file, line, key) when not. -check-plugin also launches the tier-2 plugin as
'aof2-host plugins check' does (handshake, contract, Configure, Probe) and stops it.`,
		example: "aof2-host config validate -config /etc/aof2/aof2.hcl -check-plugin",
		run:     runConfigValidate},
	{name: "completion", args: "bash|zsh|fish", summary: "print the shell completion script (commands, then each command's flags)",
		long:    "bash: source <(aof2-host completion bash), or save it under /etc/bash_completion.d/aof2-host. zsh: save it as _aof2-host on $fpath. fish: aof2-host completion fish > ~/.config/fish/completions/aof2-host.fish.",
		example: "aof2-host completion bash > /etc/bash_completion.d/aof2-host",
		run:     runCompletion},
	{name: "version", summary: "print the version, commit, build date and Go version, and the client API and plugin contract versions (also -version)",
		example: "aof2-host version --json",
		run:     runVersion},
	{name: "demo", summary: "start a node with tiny budgets, drive it through the client API, show data moving tier 0 → 1 → 2 and back",
		example: "aof2-host demo -records 20000 -size 2048",
		run:     func(ctx context.Context, e *cmdEnv) error { return runDemo(ctx, e.args, e.stdout, e.stderr) }},
}
