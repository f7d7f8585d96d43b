#!/usr/bin/env bash
# Container image (make image): deploy/container/Dockerfile over the
# linux/$ARCH release archive that `make dist` wrote, built with buildah
# (Debian's package, vfs storage: no daemon, no privileges for a build
# without RUN steps). Prints the image id.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DIST_DIR:-dist}
ARCH=${ARCH:-amd64}
archive=$(ls "$OUT"/aof2-*-linux-"$ARCH".tar.gz 2>/dev/null | head -n1)
if [ -z "$archive" ]; then
  echo "image: no $OUT/aof2-*-linux-$ARCH.tar.gz: run make dist first" >&2
  exit 1
fi
version=$(basename "$archive" .tar.gz)
version=${version#aof2-}
version=${version%-linux-$ARCH}
ctx=$OUT/image
rm -rf "$ctx"
mkdir -p "$ctx/etc/ssl/certs" "$ctx/data" "$ctx/tmp"
tar -xzf "$archive" -C "$ctx" --strip-components=1 --wildcards '*/bin/*'
cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/"
buildah ${BUILDAH_FLAGS:---storage-driver vfs} build --quiet --arch "$ARCH" --timestamp 0 \
  -f deploy/container/Dockerfile -t "aof2:$version" "$ctx"
echo "image: aof2:$version"
