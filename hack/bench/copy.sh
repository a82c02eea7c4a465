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
work=$(mktemp -d -t stevedore-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
export REGISTRY_AUTH_FILE="$work/auth.json"; echo '{"auths":{}}' > "$REGISTRY_AUTH_FILE"

start_registry() { # name var: starts a registry, stores host:port in var (no subshell: it must outlive this call)
  local name=$1 port
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  mkdir -p "$work/$name"
  printf 'version: 0.1\nlog: { level: error }\nstorage:\n  filesystem: { rootdirectory: %s }\n  delete: { enabled: true }\nhttp: { addr: 127.0.0.1:%s }\n' "$work/$name" "$port" > "$work/$name.yml"
  # distribution reads every REGISTRY_* variable as a config override: keep ours away from it.
  env -u REGISTRY_AUTH_FILE docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
  pids+=($!)
  local ok=""
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { ok=1; break; }; sleep 0.05; done
  [ -n "$ok" ] || { echo "registry $name did not start:" >&2; cat "$work/$name.log" >&2; exit 1; }
  printf -v "$2" '127.0.0.1:%s' "$port"
}

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
timeit() { local t0 t1; t0=$(now); "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; return 1; }; t1=$(now); echo "$t1 - $t0" | bc -l; }
skopeo_() { skopeo --insecure-policy "$@"; }

start_registry src SRC
echo "seeding: ${LAYERS} x ${LAYER_MIB} MiB image and ${TAGS} small tags on $SRC" >&2
node --import ./hack/lib/ts-resolve.ts hack/bench/seed.ts big "$SRC" bench/big:1 "$LAYERS" "$LAYER_MIB"
node --import ./hack/lib/ts-resolve.ts hack/bench/seed.ts tags "$SRC" bench/small "$TAGS" v1

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
  node --import ./hack/lib/ts-resolve.ts hack/bench/seed.ts tags "$SRC" bench/small "$CHANGED" "v$((run + 1))"
  T[st_sync]+="$(timeit $ST sync --src docker --dest docker --src-tls-verify false --dest-tls-verify false "$SRC/bench/small" "$DS/mirror") "
  T[sk_sync]+="$(timeit skopeo_ sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC/bench/small" "$DK/mirror") "
done

mb=$((LAYERS * LAYER_MIB))
report() { # label stevedore-key skopeo-key
  local s k
  s=$(tr ' ' '\n' <<<"${T[$2]}" | grep . | median); k=$(tr ' ' '\n' <<<"${T[$3]}" | grep . | median)
  printf '%-44s %10.2f s %10.2f s %8.2fx\n' "$1" "$s" "$k" "$(echo "$k / $s" | bc -l)"
}
echo
echo "stevedore $(node bin/stevedore.js --version) vs $(skopeo --version); median of $RUNS runs; $(nproc) cores"
printf '%-44s %12s %12s %9s\n' case stevedore skopeo speedup
report "copy ${LAYERS}x${LAYER_MIB} MiB registry->registry (cold)" st_cold sk_cold
report "same copy, destination has every blob" st_warm sk_warm
report "sync ${TAGS} tags, $((TAGS - CHANGED)) unchanged" st_sync sk_sync
s=$(tr ' ' '\n' <<<"${T[st_cold]}" | grep . | median); k=$(tr ' ' '\n' <<<"${T[sk_cold]}" | grep . | median)
printf 'cold copy throughput: stevedore %.0f MiB/s, skopeo %.0f MiB/s\n' "$(echo "$mb / $s" | bc -l)" "$(echo "$mb / $k" | bc -l)"
