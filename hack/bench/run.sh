#!/usr/bin/env bash
# Benchmark: `stevedore run` against `podman run`, side by side in one run (median of RUNS).
#   warm: `run --rm IMAGE true` with the image already in each tool's store (busybox-static)
#   cold: an image of busybox-static plus 8 x 64 MiB random layers, pulled from a local registry
#         into an empty store, unpacked and run
# Podman runs with runc and cgroupfs, and with rlimits this host allows (its defaults exceed the
# hard nofile limit here); stevedore with runc. Both as root.
# CASES="warm" (or "cold") runs one case alone; default: both.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
RUNS=${RUNS:-5}
LAYERS=${LAYERS:-8}
LAYER_MIB=${LAYER_MIB:-64}
CASES=${CASES:-warm cold}
has() { [[ " $CASES " == *" $1 "* ]]; }
ST="node bin/stevedore.js"
source hack/bench/lib.sh
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs --events-backend=file)
PODMAN_RUN=(run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network none)

start_registry src SRC
echo "seeding busybox-static$(has cold && echo " and a ${LAYERS} x ${LAYER_MIB} MiB runnable image") on $SRC" >&2
seed runnable "$SRC" bench/small:1 0 1
if has cold; then seed runnable "$SRC" bench/fat:1 "$LAYERS" "$LAYER_MIB"; fi
small="$SRC/bench/small:1"; fat="$SRC/bench/fat:1"
declare -A T

# Warm: pull once into each store, then time runs of `true`.
store="$work/store-warm"
if has warm; then
  $ST run --root "$store" --rm --pull always "$small" true >/dev/null
  "${PODMAN[@]}" pull -q --tls-verify=false "$small" >/dev/null
fi
for _ in $(seq "$RUNS"); do
  has warm || break
  T[st_warm]+="$(timeit $ST run --root "$store" --rm --pull never "$small" true) "
  T[pm_warm]+="$(timeit "${PODMAN[@]}" "${PODMAN_RUN[@]}" "$small" true) "
done

# Cold: an empty store every time (podman: the image removed first).
for run in $(seq "$RUNS"); do
  has cold || break
  T[st_cold]+="$(timeit $ST run --root "$work/store-cold-$run" --rm --pull always "$fat" true) "
  rm -rf "$work/store-cold-$run"
  "${PODMAN[@]}" rmi -f "$fat" >/dev/null 2>&1 || true
  T[pm_cold]+="$(timeit "${PODMAN[@]}" "${PODMAN_RUN[@]}" --pull always --tls-verify=false "$fat" true) "
done
"${PODMAN[@]}" rmi -f "$fat" "$small" >/dev/null 2>&1 || true

report() { # label stevedore-key podman-key
  local s p
  s=$(medianof "${T[$2]}"); p=$(medianof "${T[$3]}")
  printf '%-44s %10.3f s %10.3f s %8.2fx\n' "$1" "$s" "$p" "$(echo "$s / $p" | bc -l)"
}
echo
echo "stevedore $($ST --version) vs $(podman --version); median of $RUNS runs; $(nproc) cores"
printf '%-44s %12s %12s %9s\n' case stevedore podman 'time ratio'
if has warm; then report "warm: run --rm busybox true" st_warm pm_warm; fi
if has cold; then report "cold: pull ${LAYERS}x${LAYER_MIB} MiB + unpack + run" st_cold pm_cold; fi
