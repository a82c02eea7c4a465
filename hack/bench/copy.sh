#!/usr/bin/env bash
# Benchmark: `stevedore copy/sync` against `skopeo copy/sync`, side by side in one run, on real
# registries (Debian's docker-registry) on loopback. Prints each time (median of RUNS) and the ratio.
#   1. an image of 8 x 64 MiB random layers, registry -> registry (cold: destination has nothing)
#   2. the same copy again (warm: the destination has every blob)
#   3. a sync of 50 tags of which 45 are unchanged
# Each tool writes to a registry of its own, so neither benefits from the other's uploads.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
RUNS=${RUNS:-3}
LAYERS=${LAYERS:-8}
LAYER_MIB=${LAYER_MIB:-64}
TAGS=${TAGS:-50}
CHANGED=${CHANGED:-5}
ST="node bin/stevedore.js"
source hack/bench/lib.sh
skopeo_() { skopeo --insecure-policy "$@"; }

start_registry src SRC
echo "seeding: ${LAYERS} x ${LAYER_MIB} MiB image and ${TAGS} small tags on $SRC" >&2
seed big "$SRC" bench/big:1 "$LAYERS" "$LAYER_MIB"
seed tags "$SRC" bench/small "$TAGS" v1

declare -A T
for run in $(seq "$RUNS"); do
  # Fresh destination registries every run: skopeo's blob-info cache remembers where it saw blobs
  # and would mount them from an earlier run's repository, which is not a cold copy.
  start_registry "dest-stevedore-$run" DS; start_registry "dest-skopeo-$run" DK
  T[st_cold]+="$(timeit $ST copy --progress none "docker://$SRC/bench/big:1" "docker://$DS/bench/big:1") "
  T[st_warm]+="$(timeit $ST copy --progress none "docker://$SRC/bench/big:1" "docker://$DS/bench/big:1") "
  T[sk_cold]+="$(timeit skopeo_ copy --src-tls-verify=false --dest-tls-verify=false "docker://$SRC/bench/big:1" "docker://$DK/bench/big:1") "
  T[sk_warm]+="$(timeit skopeo_ copy --src-tls-verify=false --dest-tls-verify=false "docker://$SRC/bench/big:1" "docker://$DK/bench/big:1") "
done

# Sync: mirror every tag once, change $CHANGED of them at the source, then time the re-sync.
$ST sync --src docker --dest docker --src-tls-verify false --dest-tls-verify false "$SRC/bench/small" "$DS/mirror" >/dev/null 2>&1
skopeo_ sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC/bench/small" "$DK/mirror" >/dev/null 2>&1
for run in $(seq "$RUNS"); do
  seed tags "$SRC" bench/small "$CHANGED" "v$((run + 1))"
  T[st_sync]+="$(timeit $ST sync --src docker --dest docker --src-tls-verify false --dest-tls-verify false "$SRC/bench/small" "$DS/mirror") "
  T[sk_sync]+="$(timeit skopeo_ sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC/bench/small" "$DK/mirror") "
done

mb=$((LAYERS * LAYER_MIB))
report() { # label stevedore-key skopeo-key
  local s k
  s=$(medianof "${T[$2]}"); k=$(medianof "${T[$3]}")
  printf '%-44s %10.2f s %10.2f s %8.2fx\n' "$1" "$s" "$k" "$(echo "$k / $s" | bc -l)"
}
echo
echo "stevedore $(node bin/stevedore.js --version) vs $(skopeo --version); median of $RUNS runs; $(nproc) cores"
printf '%-44s %12s %12s %9s\n' case stevedore skopeo speedup
report "copy ${LAYERS}x${LAYER_MIB} MiB registry->registry (cold)" st_cold sk_cold
report "same copy, destination has every blob" st_warm sk_warm
report "sync ${TAGS} tags, $((TAGS - CHANGED)) unchanged" st_sync sk_sync
s=$(medianof "${T[st_cold]}"); k=$(medianof "${T[sk_cold]}")
printf 'cold copy throughput: stevedore %.0f MiB/s, skopeo %.0f MiB/s\n' "$(echo "$mb / $s" | bc -l)" "$(echo "$mb / $k" | bc -l)"
