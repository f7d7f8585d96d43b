#!/usr/bin/env bash
# Runs a three-node cluster on this machine (examples/cluster/n{1,2,3}.hcl,
# data in ./cluster-data) until Ctrl-C, which stops every node cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin}
pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT
mkdir -p cluster-data
# Three nodes share this machine's cores: each Go runtime is sized for its
# share (at least one), not for the whole machine, or their schedulers spin
# against each other (docs/adr-replication.md, "Throughput, measured by CPU
# per record"). A GOMAXPROCS already set is kept.
if [ -z "${GOMAXPROCS:-}" ]; then
  share=$(( $(nproc) / 3 ))
  export GOMAXPROCS=$(( share > 0 ? share : 1 ))
fi
for i in 1 2 3; do
  "$bin/aof2-host" serve -config "examples/cluster/n$i.hcl" -log-level warn 2> "cluster-data/n$i.log" &
  pids+=($!)
done
echo "three nodes: gRPC 127.0.0.1:7510 7520 7530, HTTP 127.0.0.1:7511 7521 7531; logs in cluster-data/n*.log"
echo "try: $bin/aof2-host cluster status -addr 127.0.0.1:7510"
wait
