#!/usr/bin/env bash
# Local servers for the cloud backend plugins' tests: two S3 servers
# (versitygw, and gofakes3 for the key shapes versitygw's posix backend
# cannot store), a GCS server (fake-gcs-server) and Azurite's blob service.
#
#   scripts/emulators.sh install   install the pinned versions into $TOOLS
#   scripts/emulators.sh up        install, start all four on free loopback
#                                  ports, wait until healthy, write $STATE/env
#                                  (shell) and $STATE/env.mk (make) and print
#                                  the endpoints
#   scripts/emulators.sh down      stop what `up` started, by PID
#   scripts/emulators.sh status    print the endpoints of running servers
#
# The versions are pinned here and nowhere else. Everything lands in the
# git-ignored tools folder (.tools by default); an installed version is
# reused. Tests find the servers through the AOF2_* variables in $STATE/env.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSITYGW_VERSION=v1.8.0
FAKE_GCS_SERVER_VERSION=v1.56.1
GOFAKES3_VERSION=v1.2.0
AZURITE_VERSION=3.37.0

TOOLS=${TOOLS:-$PWD/.tools}
STATE=${EMULATORS_STATE:-$TOOLS/emulators}
GOBIN_DIR=$TOOLS/emulators-bin
NPM_DIR=$TOOLS/azurite-$AZURITE_VERSION
# Fixed test credentials for the local servers only.
S3_ACCESS=aof2-test-access
S3_SECRET=aof2-test-secret-0123456789
# Azurite's well-known development account (public, documented by Microsoft).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

log() { echo "emulators: $*" >&2; }

# go_tool NAME MODULE VERSION: install MODULE@VERSION unless NAME-VERSION exists.
go_tool() {
  local name=$1 module=$2 version=$3 bin=$GOBIN_DIR/$1-$3
  if [ -x "$bin" ]; then return; fi
  mkdir -p "$GOBIN_DIR"
  local tmp start=$SECONDS
  tmp=$(mktemp -d)
  log "installing $module@$version (a cold build of versitygw takes minutes)"
  GOBIN=$tmp GOFLAGS= go install "$module@$version"
  mv "$tmp/$name" "$bin"
  rm -rf "$tmp"
  log "installed $name $version in $((SECONDS - start))s"
}

install() {
  go_tool versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"
  go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_SERVER_VERSION"
  go_tool gofakes3 github.com/johannesboyne/gofakes3/cmd/gofakes3 "$GOFAKES3_VERSION"
  if [ ! -x "$NPM_DIR/node_modules/.bin/azurite-blob" ]; then
    local start=$SECONDS
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || echo '{"name":"aof2-emulators","private":true}' >"$NPM_DIR/package.json"
    log "installing azurite@$AZURITE_VERSION"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null)
    log "installed azurite $AZURITE_VERSION in $((SECONDS - start))s"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http NAME URL PID: wait up to 60 s for URL to answer 200.
wait_http() {
  local name=$1 url=$2 pid=$3
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during start-up; its log:"; cat "$STATE/$name.log" >&2; return 1
    fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)" = 200 ]; then return 0; fi
    sleep 0.2
  done
  log "$name did not become healthy at $url"; return 1
}

# wait_tcp NAME PORT PID: wait up to 60 s for a listener on PORT.
wait_tcp() {
  local name=$1 port=$2 pid=$3
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during start-up; its log:"; cat "$STATE/$name.log" >&2; return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$name did not listen on $port"; return 1
}

start() {
  local name=$1; shift
  # setsid: its own process group, so `down` stops children too.
  setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

up() {
  install
  if [ -f "$STATE/env" ]; then down; fi
  mkdir -p "$STATE"
  local s3port s3flatport gcsport azport
  s3port=$(free_port); s3flatport=$(free_port); gcsport=$(free_port); azport=$(free_port)

  mkdir -p "$STATE/s3-data"
  start versitygw env ROOT_ACCESS_KEY= ROOT_SECRET_KEY= "$GOBIN_DIR/versitygw-$VERSITYGW_VERSION" \
    --port "127.0.0.1:$s3port" --access "$S3_ACCESS" --secret "$S3_SECRET" \
    --health /health --quiet posix "$STATE/s3-data"
  # gofakes3 keeps keys in memory, in a flat namespace: 1024-byte keys, and
  # "a" next to "a/x". It checks no signatures; the tests sign anyway.
  start gofakes3 "$GOBIN_DIR/gofakes3-$GOFAKES3_VERSION" \
    -backend memory -host "127.0.0.1:$s3flatport" -quiet
  start fake-gcs-server "$GOBIN_DIR/fake-gcs-server-$FAKE_GCS_SERVER_VERSION" \
    -scheme http -host 127.0.0.1 -port "$gcsport" -backend memory \
    -public-host "127.0.0.1:$gcsport" -log-level warn
  start azurite "$NPM_DIR/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$azport" \
    --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent

  local ok=0
  wait_http versitygw "http://127.0.0.1:$s3port/health" "$(cat "$STATE/versitygw.pid")" || ok=1
  wait_http gofakes3 "http://127.0.0.1:$s3flatport/" "$(cat "$STATE/gofakes3.pid")" || ok=1
  wait_http fake-gcs-server "http://127.0.0.1:$gcsport/_internal/healthcheck" "$(cat "$STATE/fake-gcs-server.pid")" || ok=1
  wait_tcp azurite "$azport" "$(cat "$STATE/azurite.pid")" || ok=1

  local azconn="DefaultEndpointsProtocol=http;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY;BlobEndpoint=http://127.0.0.1:$azport/$AZ_ACCOUNT;"
  cat >"$STATE/env" <<EOF
export AOF2_S3_ENDPOINT=http://127.0.0.1:$s3port
export AOF2_S3_ACCESS_KEY=$S3_ACCESS
export AOF2_S3_SECRET_KEY=$S3_SECRET
export AOF2_S3_FLAT_ENDPOINT=http://127.0.0.1:$s3flatport
export AOF2_GCS_ENDPOINT=http://127.0.0.1:$gcsport
export AOF2_AZURE_CONNECTION_STRING='$azconn'
EOF
  sed -e 's/^export //' -e "s/'//g" -e 's/=/ := /' "$STATE/env" | sed 's/^/export /' >"$STATE/env.mk"
  if [ $ok -ne 0 ]; then down; return 1; fi
  status
}

status() {
  if [ ! -f "$STATE/env" ]; then log "not running (make emulators-up)"; return 1; fi
  sed 's/^export //' "$STATE/env"
}

down() {
  local name pid
  for name in versitygw gofakes3 fake-gcs-server azurite; do
    [ -f "$STATE/$name.pid" ] || continue
    pid=$(cat "$STATE/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      log "stopped $name (pid $pid)"
    fi
    rm -f "$STATE/$name.pid"
  done
  rm -rf "$STATE/env" "$STATE/env.mk" "$STATE/s3-data"
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 install|up|down|status" >&2; exit 2 ;;
esac
