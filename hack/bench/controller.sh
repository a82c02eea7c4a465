#!/usr/bin/env bash
# Benchmark (a script, not a test): the ImageMirror controller at scale on the real control plane.
#   1. a registry on loopback with REPOS source repositories of TAGS small images each, and the
#      same images already at the destinations (every mirror finds its images unchanged)
#   2. etcd + kube-apiserver with the CRDs (hack/demo/controlplane.ts, as `make demo`)
#   3. `stevedore controller` (the built CLI, default flags unless WORKERS is set)
#   4. COUNT ImageMirrors created at once; prints the time until all are Ready, the controller's
#      peak RSS (VmHWM) and CPU seconds, and the CPU of the API server, etcd and the registry
#   5. (RESTART=1, default) a new controller over the COUNT Ready mirrors, as after a restart or a
#      leader change: time until it has reconciled them all, its peak RSS and CPU
# Targets (issue 5): all Ready within 60 s, peak RSS under 200 MiB. Exits 1 if not all are Ready
# within TIMEOUT seconds. Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
COUNT=${COUNT:-1000}
REPOS=${REPOS:-10}
TAGS=${TAGS:-3}
TIMEOUT=${TIMEOUT:-120}
WORKERS=${WORKERS:-}
RESTART=${RESTART:-1}
HEAP_SNAPSHOT=${HEAP_SNAPSHOT:-} # a directory: write a heap snapshot of the controller there at the end
CONTROLLER_NODE_FLAGS=${CONTROLLER_NODE_FLAGS:-} # e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" or V8 heap flags
TS="node --import ./hack/lib/ts-resolve.ts"
source hack/bench/lib.sh
[ -f dist/cli/main.js ] || { echo "dist/ is missing: run make build" >&2; exit 1; }

controlplane_pid=""
controller_pid=""
stop_wait() { # SIGTERM one of our children, then wait for it to exit
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  wait "$1" 2>/dev/null || true
}
bench_cleanup() {
  stop_wait "$controller_pid"
  # controlplane.ts stops kube-apiserver and etcd and removes their directory on SIGTERM.
  stop_wait "$controlplane_pid"
  cleanup
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

start_registry reg REG
registry_pid=${pids[-1]}
echo "seeding $REG: $REPOS repositories x $TAGS tags, at source and destination" >&2
$TS hack/bench/controller/seed.ts "$REG" "$REPOS" "$TAGS"

kubeconfig="$work/kubeconfig"
$TS hack/demo/controlplane.ts "$kubeconfig" >"$work/controlplane.log" 2>&1 &
controlplane_pid=$!
ok=""
for _ in $(seq 600); do
  grep -q '^READY' "$work/controlplane.log" 2>/dev/null && { ok=1; break; }
  kill -0 "$controlplane_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ok" ] || { echo "control plane did not start:" >&2; cat "$work/controlplane.log" >&2; exit 1; }
echo "control plane $(sed -n 's/^READY //p' "$work/controlplane.log")" >&2
# kube-apiserver and etcd are controlplane.ts's children (for their CPU figures).
apiserver_pid=$(pgrep -P "$controlplane_pid" -f kube-apiserver | head -1 || true)
etcd_pid=$(pgrep -P "$controlplane_pid" -x etcd | head -1 || true)

start_controller() {
  metrics_port=$(free_port)
  # shellcheck disable=SC2086 # CONTROLLER_NODE_FLAGS is a list of flags
  node $CONTROLLER_NODE_FLAGS ${HEAP_SNAPSHOT:+--heapsnapshot-signal=SIGUSR2 --diagnostic-dir="$HEAP_SNAPSHOT"} bin/stevedore.js controller --kubeconfig "$kubeconfig" --metrics-addr "127.0.0.1:$metrics_port" ${WORKERS:+--workers "$WORKERS"} >>"$work/controller.log" 2>&1 &
  controller_pid=$!
}
start_controller
ok=""
for _ in $(seq 300); do
  curl -fsS "http://127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1 && { ok=1; break; }
  kill -0 "$controller_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ok" ] || { echo "controller did not become ready:" >&2; tail -20 "$work/controller.log" >&2; exit 1; }

procs=("controller=$controller_pid" "registry=$registry_pid")
[ -n "$apiserver_pid" ] && procs+=("kube-apiserver=$apiserver_pid")
[ -n "$etcd_pid" ] && procs+=("etcd=$etcd_pid")
echo
echo "stevedore $(node bin/stevedore.js --version) controller${WORKERS:+ --workers $WORKERS}; $(nproc) cores; load average at the start $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
$TS hack/bench/controller/mirrors.ts "$kubeconfig" "$REG" "$COUNT" "$REPOS" "$TAGS" "$TIMEOUT" \
  "http://127.0.0.1:$metrics_port/metrics" "${procs[@]}" || status=$?
if [ -n "$HEAP_SNAPSHOT" ]; then
  mkdir -p "$HEAP_SNAPSHOT"; n=$(ls "$HEAP_SNAPSHOT" | wc -l)
  kill -USR2 "$controller_pid"
  for _ in $(seq 600); do [ "$(ls "$HEAP_SNAPSHOT" | wc -l)" -gt "$n" ] && break; sleep 0.1; done
  sleep 1; echo "heap snapshot in $HEAP_SNAPSHOT" >&2
fi
if [ "$status" -eq 0 ] && [ "$RESTART" = 1 ]; then
  stop_wait "$controller_pid"
  start_controller
  $TS hack/bench/controller/restart.ts "http://127.0.0.1:$metrics_port/metrics" "$COUNT" "$TIMEOUT" "$controller_pid" || status=$?
fi
if [ "$status" -ne 0 ]; then
  echo "--- last lines of the controller log ---" >&2
  tail -20 "$work/controller.log" >&2
fi
exit "$status"
