#!/usr/bin/env bash
# Checks the image `make image` built (make image-check): non-root user,
# /data volume, entrypoint; then runs it with buildah and hits /readyz and
# one append. The run uses chroot isolation: this sandbox refuses OCI
# isolation ("cgroups in hybrid mode not supported" from crun), which is
# tried too and reported, not failed on (docs/adr-host.md, "Container
# image").
set -euo pipefail
cd "$(dirname "$0")/.."
B=(buildah ${BUILDAH_FLAGS:---storage-driver vfs})
OUT=${DIST_DIR:-dist}
archive=$(ls "$OUT"/aof2-*-linux-amd64.tar.gz | head -n1)
version=$(basename "$archive" .tar.gz); version=${version#aof2-}; version=${version%-linux-amd64}
img=aof2:$version
cfg=$("${B[@]}" inspect --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Volumes}}' "$img")
echo "image-check: $img: $cfg"
case "$cfg" in
  "65532:65532 [/bin/aof2-host] map[/data:{}]") ;;
  *) echo "image-check: want user 65532:65532, entrypoint /bin/aof2-host, volume /data" >&2; exit 1 ;;
esac
ctr=$("${B[@]}" from "$img")
log=$(mktemp)
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  "${B[@]}" rm "$ctr" >/dev/null 2>&1 || true
  "${B[@]}" rmi "$img" >/dev/null 2>&1 || true # vfs storage keeps a full copy per image
  rm -f "$log"
}
trap cleanup EXIT
"${B[@]}" run --isolation chroot -e AOF2_LISTEN_GRPC=127.0.0.1:0 -e AOF2_LISTEN_HTTP=127.0.0.1:0 \
  -e AOF2_LISTEN_AUTH_TOKEN=image-check "$ctr" /bin/aof2-host serve >"$log" 2>&1 &
pid=$!
http=""
for _ in $(seq 1 150); do
  # The banner: a JSON log line off a terminal ("@message":"serving", "http":ADDR).
  http=$(sed -n 's/.*"@message":"serving".*"http":"\([^"]*\)".*/\1/p' "$log" | head -n1)
  if [ -n "$http" ] && curl -sf "http://$http/readyz" >/dev/null; then break; fi
  sleep 0.2
done
if ! curl -sf "http://$http/readyz" >/dev/null; then
  echo "image-check: the container never answered /readyz" >&2; cat "$log" >&2; exit 1
fi
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer image-check' --data-binary hello "http://$http/v1/streams/1/records")
[ "$code" = 200 ] || { echo "image-check: append answered $code" >&2; cat "$log" >&2; exit 1; }
echo "image-check: $img serves (/readyz ready, an append stored)"
if out=$("${B[@]}" run --isolation oci "$ctr" /bin/aof2-host version 2>&1); then
  echo "image-check: OCI isolation works too"
else
  echo "image-check: OCI isolation not available here: $(echo "$out" | head -n1)"
fi
