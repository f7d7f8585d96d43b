#!/usr/bin/env bash
# Release archives (make dist): for each platform, one tar.gz holding the
# host and every plugin binary side by side in bin/ (the host finds its
# plugins next to itself), README, CHANGELOG, LICENSE when the project has
# one, docs/, example configurations and the systemd unit; and SHA256SUMS.
#
# Reproducible: static binaries (CGO_ENABLED=0) built with -trimpath and
# an empty build id, the version and date taken from git (the date is the
# commit's, not the clock's), archive entries sorted, owned by 0:0 and
# dated at the commit, gzip without a timestamp. Two runs on one commit
# give the same SHA256SUMS (make dist-check). A short script rather than
# goreleaser: five `go build`s and a tar per platform need no tool and
# no network beyond the module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DIST_DIR:-dist}
PLATFORMS=${DIST_PLATFORMS:-"linux/amd64 linux/arm64"}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
DATE=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
PKG=github.com/aof2/aof2/internal/buildinfo
LDFLAGS="-s -w -buildid= -X $PKG.version=$VERSION -X $PKG.date=$DATE"
BINS=(
  aof2-host=./cmd/aof2-host
  aof2-plugin-fs=./plugins/fs/cmd/aof2-plugin-fs
  aof2-plugin-s3=./plugins/s3/cmd/aof2-plugin-s3
  aof2-plugin-gcs=./plugins/gcs/cmd/aof2-plugin-gcs
  aof2-plugin-azure=./plugins/azure/cmd/aof2-plugin-azure
)

rm -rf "$OUT"
mkdir -p "$OUT/stage"
for p in $PLATFORMS; do
  os=${p%/*} arch=${p#*/}
  name=aof2-$VERSION-$os-$arch
  stage=$OUT/stage/$name
  mkdir -p "$stage/bin" "$stage/examples" "$stage/systemd"
  for b in "${BINS[@]}"; do
    CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=auto -ldflags "$LDFLAGS" -o "$stage/bin/${b%%=*}" "${b#*=}"
  done
  cp README.md CHANGELOG.md "$stage/"
  if [ -f LICENSE ]; then cp LICENSE "$stage/"; fi
  cp -r docs "$stage/docs"
  cp examples/*.hcl examples/README.md "$stage/examples/"
  cp deploy/systemd/aof2.service "$stage/systemd/"
  tar --sort=name --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner \
    --mode='u+rwX,go+rX,go-w' -C "$OUT/stage" -cf - "$name" | gzip -n -9 > "$OUT/$name.tar.gz"
  echo "dist: $OUT/$name.tar.gz"
done
rm -rf "$OUT/stage"
(cd "$OUT" && sha256sum -- *.tar.gz > SHA256SUMS)
cat "$OUT/SHA256SUMS"
