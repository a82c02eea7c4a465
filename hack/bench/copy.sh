#!/usr/bin/env bash
# Benchmark: `stevedore copy/sync` against skopeo, crane and regclient (regctl/regsync), side by
# side in one run, on real registries (Debian's docker-registry) on loopback. Prints each time
# (median of RUNS) and the ratio against stevedore.
#   1. an image of 8 x 64 MiB random layers, registry -> registry (cold: destination has nothing)
#   2. the same copy again (warm: the destination has every blob)
#   3. a sync of 50 tags of which 45 are unchanged (stevedore, skopeo, regsync)
#   4. a sync of 50 tags, all unchanged (stevedore, skopeo, regsync)
# Each tool writes to a registry of its own (fresh for every cold run), so none benefits from
# another's uploads. Peers: CRANE, REGCTL and REGSYNC (`make bench-copy` builds them into the tool
# cache and passes their paths; run alone, the script takes them from PATH or the tool cache).
# A peer that is missing is left out of the table.
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
CACHE=${STEVEDORE_CACHE:-$HOME/.cache/stevedore}
CRANE=${CRANE:-$(ls "$CACHE"/bin/crane-v* 2>/dev/null | tail -1)}
REGCTL=${REGCTL:-$(command -v regctl || ls "$CACHE"/bin/regctl-v* 2>/dev/null | tail -1 || true)}
REGSYNC=${REGSYNC:-$(command -v regsync || ls "$CACHE"/bin/regsync-v* 2>/dev/null | tail -1 || true)}
[ -x "${CRANE:-}" ] || CRANE=""
# regclient keeps its registry settings (plain HTTP for our loopback registries) in its own config.
HOME_REG="$work/regclient-home"
mkdir -p "$HOME_REG"
# Commands (not shell functions): timecpu runs them under /usr/bin/time.
RC=(env HOME="$HOME_REG" "$REGCTL")
rc_plain() { "${RC[@]}" registry set --tls disabled "$1" >/dev/null; }

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

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
start_registry src SRC
SRCPID=${pids[-1]}
echo "seeding: ${LAYERS} x ${LAYER_MIB} MiB image and ${TAGS} small tags on $SRC" >&2
seed big "$SRC" bench/big:1 "$LAYERS" "$LAYER_MIB"
seed tags "$SRC" bench/small "$TAGS" v1

[ -z "$REGCTL" ] || rc_plain "$SRC"

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
  if [ -n "$CRANE" ]; then
    start_registry "dest-crane-$run" DC; DCPID=${pids[-1]}
    timecpu cr_cold "$SRCPID" "$DCPID" "$CRANE" copy --insecure "$SRC/bench/big:1" "$DC/bench/big:1"
    timecpu cr_warm "$SRCPID" "$DCPID" "$CRANE" copy --insecure "$SRC/bench/big:1" "$DC/bench/big:1"
  fi
  if [ -n "$REGCTL" ]; then
    start_registry "dest-regctl-$run" DR; DRPID=${pids[-1]}
    rc_plain "$DR"
    timecpu rc_cold "$SRCPID" "$DRPID" "${RC[@]}" image copy "$SRC/bench/big:1" "$DR/bench/big:1"
    timecpu rc_warm "$SRCPID" "$DRPID" "${RC[@]}" image copy "$SRC/bench/big:1" "$DR/bench/big:1"
  fi
done

# Sync: mirror every tag once, change $CHANGED of them at the source, then time the re-sync; then
# time a re-sync where nothing changed. regsync mirrors the same repository to the same name.
if [ -n "$REGSYNC" ]; then
  start_registry "dest-regsync" DG; DGPID=${pids[-1]}
  cat > "$work/regsync.yml" <<YAML
version: 1
creds:
  - registry: $SRC
    tls: disabled
  - registry: $DG
    tls: disabled
sync:
  - source: $SRC/bench/small
    target: $DG/mirror/small
    type: repository
YAML
  RS=(env HOME="$HOME_REG" "$REGSYNC" once -c "$work/regsync.yml" -v error)
  "${RS[@]}" >/dev/null 2>&1
fi
$ST sync --src docker --dest docker --src-tls-verify false --dest-tls-verify false "$SRC/bench/small" "$DS/mirror" >/dev/null 2>&1
$SK sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC/bench/small" "$DK/mirror" >/dev/null 2>&1
for run in $(seq "$RUNS"); do
  seed tags "$SRC" bench/small "$CHANGED" "v$((run + 1))"
  timecpu st_sync "$SRCPID" "$DSPID" $ST sync --src docker --dest docker --src-tls-verify false --dest-tls-verify false "$SRC/bench/small" "$DS/mirror"
  timecpu sk_sync "$SRCPID" "$DKPID" $SK sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC/bench/small" "$DK/mirror"
  [ -z "$REGSYNC" ] || timecpu rs_sync "$SRCPID" "$DGPID" "${RS[@]}"
done
for run in $(seq "$RUNS"); do
  timecpu st_same "$SRCPID" "$DSPID" $ST sync --src docker --dest docker --src-tls-verify false --dest-tls-verify false "$SRC/bench/small" "$DS/mirror"
  timecpu sk_same "$SRCPID" "$DKPID" $SK sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false "$SRC/bench/small" "$DK/mirror"
  [ -z "$REGSYNC" ] || timecpu rs_same "$SRCPID" "$DGPID" "${RS[@]}"
done

mb=$((LAYERS * LAYER_MIB))
# One row: stevedore's median, then each peer's median and its ratio (peer time / stevedore time:
# above 1 means stevedore is faster); "-" where the peer has no such case or is missing.
cell() { if [ -n "${T[$1]:-}" ]; then printf '%8.2f s %6.2fx' "$(medianof "${T[$1]}")" "$(echo "$(medianof "${T[$1]}") / $2" | bc -l)"; else printf '%18s' '-'; fi; }
report() { # label case-suffix
  local s; s=$(medianof "${T[st_$2]}")
  local rk="rc_$2"; [ -n "${T[$rk]:-}" ] || rk="rs_$2"
  printf '%-40s %8.2f s  %s  %s  %s\n' "$1" "$s" "$(cell "sk_$2" "$s")" "$(cell "cr_$2" "$s")" "$(cell "$rk" "$s")"
}
echo
echo "stevedore $(node bin/stevedore.js --version) vs $(skopeo --version)${CRANE:+, crane $("$CRANE" version 2>/dev/null)}${REGCTL:+, regctl $("${RC[@]}" version --format '{{.VCSTag}}' 2>/dev/null)}; median of $RUNS runs; $(nproc) cores"
printf '%-40s %10s  %18s  %18s  %18s\n' case stevedore 'skopeo (ratio)' 'crane (ratio)' 'regctl/regsync'
report "copy ${LAYERS}x${LAYER_MIB} MiB registry->registry (cold)" cold
report "same copy, destination has every blob" warm
report "sync ${TAGS} tags, $((TAGS - CHANGED)) unchanged" sync
report "sync ${TAGS} tags, all unchanged" same
thr() { [ -n "${T[$1]:-}" ] && printf ' %s %.0f MiB/s' "$2" "$(echo "$mb / $(medianof "${T[$1]}")" | bc -l)"; return 0; }
echo "cold copy throughput:$(thr st_cold stevedore)$(thr sk_cold skopeo)$(thr cr_cold crane)$(thr rc_cold regctl)"
s=$(medianof "${T[st_cold]}")
best=$(for k in sk_cold cr_cold rc_cold; do if [ -n "${T[$k]:-}" ]; then medianof "${T[$k]}"; fi; done | sort -g | head -1)
printf 'target 1 (cold throughput >= 1.2x the fastest peer): %.2fx\n' "$(echo "$best / $s" | bc -l)"
if [ -n "${T[rs_same]:-}" ]; then printf 'target 2 (unchanged 50-tag sync >= 1.5x faster than regsync): %.2fx\n' "$(echo "$(medianof "${T[rs_same]}") / $(medianof "${T[st_same]}")" | bc -l)"; fi
# Where the CPU went (medians of each column over the runs): on 2 cores, a copy cannot take less
# wall time than the sum of the three divided by 2, whoever the tool is.
cpucol() { tr ' ' '\n' <<<"$1" | grep . | cut -d/ -f"$2" | median; }
echo
printf '%-32s %26s %26s %26s %26s\n' 'CPU s: tool / src reg / dest reg' stevedore skopeo crane regctl/regsync
for c in cold warm sync same; do
  line=$(printf '%-32s' "$c")
  for t in st sk cr rc; do
    k="${t}_$c"; [ "$t" = rc ] && [ -z "${C[$k]:-}" ] && k="rs_$c"
    if [ -n "${C[$k]:-}" ]; then line+=$(printf ' %8.2f %8.2f %8.2f' "$(cpucol "${C[$k]}" 1)" "$(cpucol "${C[$k]}" 2)" "$(cpucol "${C[$k]}" 3)"); else line+=$(printf ' %26s' -); fi
  done
  echo "$line"
done
# CPU seconds (user+sys) of each tool's own process per GiB it wrote to its destination in the
# cold copy (median over the runs): the figure that load on the machine changes least.
gib() { [ -n "${C[$1]:-}" ] && printf ' %s %.2f s' "$2" "$(echo "$(cpucol "${C[$1]}" 1) / ($mb / 1024)" | bc -l)"; return 0; }
echo "CPU s per GiB copied (cold, tool only):$(gib st_cold stevedore)$(gib sk_cold skopeo)$(gib cr_cold crane)$(gib rc_cold regctl)"
echo "load average: at the start $LOAD0; at the end $(cut -d' ' -f1-3 /proc/loadavg)"
