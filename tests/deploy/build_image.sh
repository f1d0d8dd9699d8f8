#!/usr/bin/env bash
# Build (and optionally smoke-run) the tokenrelay image without a Docker daemon: buildah builds, podman runs.
#
# No container registry is reachable on the build machines, so the Dockerfile's base image (python:3.11-slim) is
# replaced by a stand-in assembled from Debian packages with debootstrap (Debian 12's python3 is 3.11) and tagged
# with the same name; the Dockerfile itself is built unchanged. The Debian mirror is the one apt already uses.
#
# Usage: build_image.sh WORKDIR [IMAGE_TAG]      (storage lives under WORKDIR so nothing leaks into the host's)
set -euo pipefail
work="${1:?usage: build_image.sh WORKDIR [IMAGE_TAG]}"
tag="${2:-localhost/tokenrelay:test}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$work"
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)

mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || { echo "cannot find the Debian mirror apt uses" >&2; exit 1; }
  echo "$uri"
}

if ! buildah "${storage[@]}" inspect --type image localhost/python:3.11-slim >/dev/null 2>&1; then
  rootfs="$work/rootfs"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$rootfs" "$(mirror)" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  fi
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$work/rootfs.tar" .
  ctr=$(buildah "${storage[@]}" from scratch)
  buildah "${storage[@]}" add "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah "${storage[@]}" commit --quiet "$ctr" localhost/python:3.11-slim >/dev/null
  buildah "${storage[@]}" rm "$ctr" >/dev/null
  rm -f "$work/rootfs.tar"
fi

buildah "${storage[@]}" bud --isolation chroot --pull=never --format docker \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  -t "$tag" -f "$repo/Dockerfile" "$repo" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; exit 1; }
echo "$tag"
