#!/usr/bin/env bash
# Benchmark: `stevedore build` against `buildah bud --layers` (overlay storage), side by side in one run
# (median of RUNS). The context is ~100 MiB: 2000 text files and two 32 MiB random binaries; the
# Containerfile has two stages (COPY, RUN, COPY --from). Both tools pull the busybox-static base from
# a local registry, both use runc, both as root.
#   cold:      an empty store / cache each run (the base image pulled too)
#   unchanged: the same build again with nothing changed (all steps from the cache)
#   registry cache: a cold build writing the registry cache (--cache-to), then a build in a fresh
#             store (as a fresh build Pod) reading it (--cache-from): first with the source unchanged,
#             then with one text file changed (the first stage's COPY and everything after it rerun;
#             the second stage's COPY of the binaries is reused). Steps reused are reported too.
#   PUSH=1 adds: cold, pushed to a registry (stevedore build -t REGISTRY/...; buildah bud, then
#             buildah push): both keep layers uncompressed locally and gzip them on the way out
# The machine is shared (2 cores, other work running): read the ratios, not the absolute times.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
RUNS=${RUNS:-3}
ST="node bin/stevedore.js"
source hack/bench/lib.sh
BUILDAH=(buildah --storage-driver overlay)

start_registry src SRC
PUSH=${PUSH:-0}
[ "$PUSH" = 1 ] && start_registry dest DEST
echo "seeding busybox-static on $SRC and a ~100 MiB context" >&2
seed runnable "$SRC" bench/busybox:1 0 1
ctx="$work/context"
mkdir -p "$ctx/text" "$ctx/bin"
for d in $(seq 0 19); do
  mkdir -p "$ctx/text/d$d"
  for f in $(seq 0 99); do printf 'line %s of file %s in dir %s, padded to make ~18 KiB of text\n' {1..900} "$f" "$d" > "$ctx/text/d$d/f$f.txt"; done
done
head -c $((32 * 1024 * 1024)) /dev/urandom > "$ctx/bin/blob1.bin"
head -c $((32 * 1024 * 1024)) /dev/urandom > "$ctx/bin/blob2.bin"
cat > "$ctx/Containerfile" <<'CF'
ARG BASE
FROM $BASE AS builder
COPY text/ /src/text/
RUN find /src/text -type f | wc -l > /src/count && cat /src/text/d0/* | wc -c > /src/bytes
FROM $BASE
COPY bin/ /app/bin/
COPY --from=builder /src/ /app/src/
RUN cat /app/src/count
CMD ["cat", "/app/src/count"]
CF
echo "context: $(du -sh "$ctx" | cut -f1), $(find "$ctx" -type f | wc -l) files" >&2

declare -A T C
for run in $(seq "$RUNS"); do
  st_root="$work/st-$run"; bh_root="$work/bh-$run"
  bh=("${BUILDAH[@]}" --root "$bh_root/storage" --runroot "$bh_root/run")
  st_args=(build --root "$st_root" -q --build-arg "BASE=$SRC/bench/busybox:1" -t localhost/bench:1 "$ctx")
  bh_args=(bud --runtime runc --layers --tls-verify=false -q --build-arg "BASE=$SRC/bench/busybox:1" -t localhost/bench:1 "$ctx")
  T[st_cold]+="$(timeit $ST "${st_args[@]}") "
  T[bh_cold]+="$(timeit "${bh[@]}" "${bh_args[@]}") "
  T[st_warm]+="$(timeit $ST "${st_args[@]}") "
  T[bh_warm]+="$(timeit "${bh[@]}" "${bh_args[@]}") "
  "${bh[@]}" rmi -a -f >/dev/null 2>&1 || true
  umount "$bh_root/storage/overlay" 2>/dev/null || true
  rm -rf "$st_root" "$bh_root"
  # Registry cache: each tool its own cache repository; every build in a fresh store.
  st_cache=(--cache-to "$SRC/bench/st-cache-$run" --cache-from "$SRC/bench/st-cache-$run" --tls-verify=false)
  bh_cache=(--cache-to "$SRC/bench/bh-cache-$run" --cache-from "$SRC/bench/bh-cache-$run")
  st_nq=(build --build-arg "BASE=$SRC/bench/busybox:1" -t localhost/bench:1 "${st_cache[@]}" "$ctx")
  for phase in cache_fill cache_fresh cache_changed; do
    [ "$phase" = cache_changed ] && echo "changed $run" >> "$ctx/text/d0/f0.txt"
    T[st_$phase]+="$(timeit $ST build --root "$work/st-$phase-$run" "${st_nq[@]:1}") "
    C[st_$phase]+="$(grep -oE '\([0-9]+ steps run, [0-9]+ from cache' "$work/last.err" | tail -1 | awk -F'[( ,]+' '{print $5 "/" $2 + $5}') "
    bhp=("${BUILDAH[@]}" --root "$work/bh-$phase-$run/storage" --runroot "$work/bh-$phase-$run/run")
    T[bh_$phase]+="$(timeit "${bhp[@]}" "${bh_args[@]:0:5}" "${bh_cache[@]}" "${bh_args[@]:5}") "
    "${bhp[@]}" rmi -a -f >/dev/null 2>&1 || true
    umount "$work/bh-$phase-$run/storage/overlay" 2>/dev/null || true
    rm -rf "$work/st-$phase-$run" "$work/bh-$phase-$run"
  done
  if [ "$PUSH" = 1 ]; then
    st_push=(build --root "$st_root" -q --build-arg "BASE=$SRC/bench/busybox:1" -t "$DEST/bench/st:$run" "$ctx")
    T[st_push]+="$(timeit $ST "${st_push[@]}") "
    T[bh_push]+="$(timeit bash -c '"$@" bud --runtime runc --layers --tls-verify=false -q --build-arg "BASE='"$SRC"'/bench/busybox:1" -t localhost/bench:1 '"$ctx"' && "$@" push --tls-verify=false -q localhost/bench:1 docker://'"$DEST"'/bench/bh:'"$run" _ "${bh[@]}") "
    "${bh[@]}" rmi -a -f >/dev/null 2>&1 || true
    umount "$bh_root/storage/overlay" 2>/dev/null || true
    rm -rf "$st_root" "$bh_root"
  fi
done

report() { # label stevedore-key buildah-key
  local s b
  s=$(medianof "${T[$2]}"); b=$(medianof "${T[$3]}")
  printf '%-44s %10.2f s %10.2f s %8.2fx\n' "$1" "$s" "$b" "$(echo "$s / $b" | bc -l)"
}
echo
echo "stevedore $($ST --version) vs $(buildah --version | cut -d' ' -f1-3) (overlay); median of $RUNS runs; $(nproc) cores"
printf '%-44s %12s %12s %9s\n' case stevedore buildah 'time ratio'
report "cold: two-stage build, ~100 MiB context" st_cold bh_cold
report "unchanged rebuild (all cached)" st_warm bh_warm
report "registry cache: cold, writing it (--cache-to)" st_cache_fill bh_cache_fill
report "  fresh store, unchanged source (--cache-from)" st_cache_fresh bh_cache_fresh
report "  fresh store, one text file changed" st_cache_changed bh_cache_changed
echo "stevedore steps from the registry cache (cached/total), per run: fresh ${C[st_cache_fresh]}; changed ${C[st_cache_changed]}"
vs_cold() { echo "$(medianof "${T[$1]}") / $(medianof "${T[st_cache_fill]}")" | bc -l; }
printf 'stevedore, fresh store with the registry cache against its cold build (median wall time): unchanged %.2fx, one file changed %.2fx\n' "$(vs_cold st_cache_fresh)" "$(vs_cold st_cache_changed)"
[ "$PUSH" = 1 ] && report "cold, pushed to a registry (bud + push)" st_push bh_push
exit 0
