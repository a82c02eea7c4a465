#!/usr/bin/env bash
# `make image`: Stevedore builds its own image.
#   1. hack/image/base-rootfs.sh makes a base root filesystem from Debian packages (node, git, ssh);
#   2. `stevedore import` turns it into a one-layer base image in an OCI layout;
#   3. the context gets package.json, bin/, dist/ and only the production node_modules;
#   4. `stevedore build -f hack/image/Containerfile` builds the image to $IMAGE
#      (default an OCI layout; a registry name pushes).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${STEVEDORE_CACHE:-$HOME/.cache/stevedore}/image
image=${IMAGE:-oci:$work/out:stevedore}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
stevedore() { node bin/stevedore.js "$@"; }

mkdir -p "$work"
# The default output (an OCI layout in the cache) is rebuilt only when what goes into it changed:
# dist/, bin/, the package files, these scripts, the pinned node and the static runc.
stamp=""
if [ -z "${IMAGE:-}" ]; then
  runc_v=$(awk '$1 == "RUNC_VERSION" { print $3 }' hack/node.mk)
  stamp=$( { find dist bin hack/image package.json package-lock.json -type f -print0 | sort -z | xargs -0 sha256sum
             sha256sum "$(readlink -f node_modules/.bin/node)" "${RUNC_STATIC:-${STEVEDORE_CACHE:-$HOME/.cache/stevedore}/bin/runc-static-$runc_v}"
             echo "$epoch"; } | sha256sum | cut -d' ' -f1)
  if [ -f "$work/out/index.json" ] && [ "$(cat "$work/out.inputs" 2>/dev/null)" = "$stamp" ]; then
    echo "image: $image is up to date" >&2
    exit 0
  fi
  rm -f "$work/out.inputs"
fi
hack/image/base-rootfs.sh "$work/rootfs"
rm -rf "$work/base"
stevedore import --timestamp "$epoch" --env PATH=/usr/local/bin:/usr/bin:/bin "$work/rootfs" "oci:$work/base:node"

ctx="$work/context"
rm -rf "$ctx"
mkdir -p "$ctx/node_modules"
cp -a package.json bin dist "$ctx/"
# Production dependencies only (npm's own view of the tree, no download).
# npm ls exits non-zero over problems in the tree that do not concern what it lists (a peer or
# dev dependency of a dependency missing); the list is still complete, so that is only a warning.
{ npm ls --omit=dev --parseable --all 2>/dev/null || echo "image: npm ls reported problems in node_modules (listing kept)" >&2; } | tail -n +2 | while read -r dir; do
  rel=${dir#"$PWD/"}
  mkdir -p "$ctx/$(dirname "$rel")"
  [ -e "$ctx/$rel" ] || cp -a "$rel" "$ctx/$rel"
done
echo "context: $(du -sh "$ctx" | cut -f1)" >&2

stevedore build --timestamp "$epoch" --build-arg "BASE=oci:$work/base:node" -f hack/image/Containerfile -t "$image" "$ctx"
[ -z "$stamp" ] || echo "$stamp" > "$work/out.inputs"
echo "image: $image" >&2
