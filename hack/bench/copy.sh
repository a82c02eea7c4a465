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
SK="skopeo --insecure-policy"

# CPU seconds (user+sys) of a process by pid, from /proc: the registries' share of a run is part
# of the picture on a 2-core machine, where they compete with the tool for the same CPUs.
tck=$(getconf CLK_TCK)
cpuof() { awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
# timecpu KEY SRCPID DESTPID cmd...: wall time into T[KEY]; the tool's CPU (user+sys, children
# included) and both registries' CPU during the run into C[KEY].
declare -A C
timecpu() {
  local key=$1 sp=$2 dp=$3 s0 d0 t0 t1; shift 3
  s0=$(cpuof "$sp"); d0=$(cpuof "$dp"); t0=$(now)
  /usr/bin/time -f '%U %S' -o "$work/cpu" "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; return 1; }
  t1=$(now)
  T[$key]+="$(echo "$t1 - $t0" | bc -l) "
  C[$key]+="$(awk '{printf "%.2f", $1 + $2}' "$work/cpu")/$(echo "$(cpuof "$sp") - $s0" | bc -l)/$(echo "$(cpuof "$dp") - $d0" | bc -l) "
}

start_registry src SRC
SRCPID=${pids[-1]}
echo "seeding: ${LAYERS} x ${LAYER_MIB} MiB image and ${TAGS} small tags on $SRC" >&2
seed big "$SRC" bench/big:1 "$LAYERS" "$LAYER_MIB"
seed tags "$SRC" bench/small "$TAGS" v1

declare -A T
for run in $(seq "$RUNS"); do
  # Fresh destination registries every run: skopeo's blob-info cache remembers where it saw blobs
  # and would mount them from an earlier run's repository, which is not a cold copy.
  start_registry "dest-stevedore-$run" DS; DSPID=${pids[-1]}
  start_registry "dest-skopeo-$run" DK; DKPID=${pids[-1]}
  timecpu st_cold "$SRCPID" "$DSPID" $ST copy --progress none "docker://$SRC/bench/big:1" "docker://$DS/bench/big:1"
  timecpu st_warm "$SRCPID" "$DSPID" $ST copy --progress none "docker://$SRC/bench/big:1" "docker://$DS/bench/big:1"
  timecpu sk_cold "$SRCPID" "$DKPID" $SK copy --src-tls-verify=false --dest-tls-verify=false "docker://$SRC/bench/big:1" "docker://$DK/bench/big:1"
  timecpu sk_warm "$SRCPID" "$DKPID" $SK copy --src-tls-verify=false --dest-tls-verify=false "docker://$SRC/bench/big:1" "docker://$DK/bench/big:1"
done

# Sync: mirror every tag once, change $CHANGED of them at the source, then time the re-sync.
$ST sync --src docker --dest docker --src-tls-verify false --dest-tls-verify false "$SRC/bench/small" "$DS/mirror" >/dev/null 2>&1
$SK sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC/bench/small" "$DK/mirror" >/dev/null 2>&1
for run in $(seq "$RUNS"); do
  seed tags "$SRC" bench/small "$CHANGED" "v$((run + 1))"
  timecpu st_sync "$SRCPID" "$DSPID" $ST sync --src docker --dest docker --src-tls-verify false --dest-tls-verify false "$SRC/bench/small" "$DS/mirror"
  timecpu sk_sync "$SRCPID" "$DKPID" $SK sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC/bench/small" "$DK/mirror"
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
# Where the CPU went (medians of each column over the runs): on 2 cores, a copy cannot take less
# wall time than the sum of the three divided by 2, whoever the tool is.
cpucol() { tr ' ' '\n' <<<"$1" | grep . | cut -d/ -f"$2" | median; }
echo
printf '%-44s %27s %27s\n' 'CPU seconds: tool / source reg / dest reg' stevedore skopeo
for c in cold:st_cold:sk_cold warm:st_warm:sk_warm sync:st_sync:sk_sync; do
  IFS=: read -r name a b <<<"$c"
  printf '%-44s %9.2f %8.2f %8.2f %9.2f %8.2f %8.2f\n' "$name" \
    "$(cpucol "${C[$a]}" 1)" "$(cpucol "${C[$a]}" 2)" "$(cpucol "${C[$a]}" 3)" "$(cpucol "${C[$b]}" 1)" "$(cpucol "${C[$b]}" 2)" "$(cpucol "${C[$b]}" 3)"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
