#!/usr/bin/env bash
# Builds the simulation image FROM scratch: the statically linked songswarm
# binary, Debian's busybox-static for a shell and `ip`, and the entry script.
# Installs busybox-static if it is missing. The image is tagged $1 (default
# songswarm-sim:latest; simulate.sh gives every run its own tag).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
target_dir=${CARGO_TARGET_DIR:-$repo/target}
image=${1:-songswarm-sim:latest}

if ! dpkg -s busybox-static >/dev/null 2>&1; then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq busybox-static
fi

echo "building the static binary"
(cd "$repo" && RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --release --target x86_64-unknown-linux-gnu --bin songswarm)

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here/Dockerfile" "$here/sim-entry" "$ctx/"
cp "$target_dir/x86_64-unknown-linux-gnu/release/songswarm" "$ctx/songswarm"
cp /bin/busybox "$ctx/busybox"
echo "building the image $image"
docker build -q -t "$image" "$ctx" >/dev/null
echo "image $image ready"
