#!/usr/bin/env bash
# Runs every Fuzz* target in the module for $FUZZTIME each (go test allows one
# fuzz target per invocation).
#
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded" as a
# failure when -fuzztime expires while a worker is mid-call on a loaded machine
# (golang/go#75804, fixed in Go 1.27). Such a run wrote no failing input and
# printed nothing else; it is retried once. Anything else — a failing input, a
# panic, a t.Error, or the same flake twice — fails.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}

# deadline_flake LOG: the run failed only with the coordinator's deadline error.
deadline_flake() {
  grep -q 'context deadline exceeded' "$1" &&
    ! grep -qE 'Failing input written to|panic:|_test\.go:[0-9]+:' "$1"
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    for attempt in 1 2; do
      echo "== $pkg $target ($FUZZTIME)"
      if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1 | tee "$log"; then
        break
      fi
      if [ "$attempt" = 1 ] && deadline_flake "$log"; then
        echo "== $target: the fuzz coordinator's deadline race (golang/go#75804), no failing input; running it again"
        continue
      fi
      exit 1
    done
  done
done
