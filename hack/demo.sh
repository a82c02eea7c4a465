#!/usr/bin/env bash
# `make demo`: Stevedore's engine end to end on one machine, no cluster needed.
#   1. start a real OCI registry (Debian's docker-registry) on loopback
#   2. build a small base image from Debian's busybox-static with `stevedore import`
#   3. push it, copy it within the registry (cross-repository mount) and out to an OCI layout
#   4. show `stevedore inspect` and `list-tags`
#   5. start a local control plane (etcd + kube-apiserver, hack/demo/controlplane.ts) with the CRDs,
#      run `stevedore controller` and a node agent (`stevedore agent`, runc) against it, apply an
#      ImageMirror from the demo repository to another one and wait for Ready
#   6. the whole pipeline (hack/demo/pipeline.ts): ImageBuild of an inline Containerfile FROM that
#      image (build Pods run by a test stand-in for the kubelet) -> ImageMirror of the result ->
#      ContainerRun of the mirrored image, each status printed as it turns Ready; then
#      `kubectl get stevedore -A` (or the same via the API)
set -euo pipefail
cd "$(dirname "$0")/.."
STEVEDORE="node bin/stevedore.js"
export PATH="$PWD/node_modules/.bin:$PATH"
work=$(mktemp -d -t stevedore-demo-XXXXXX)
# The node agent's store apart from $work (mode 0700, holding the control plane's credentials): a
# ContainerRun runs in a user namespace of its own, as unprivileged node ids that runc's mounts must
# pass through every directory above the store; the agent refuses a store they cannot reach.
agent_root=$(mktemp -d -t stevedore-demo-agent-XXXXXX)
chmod 0711 "$agent_root"
registry_pid=""
controlplane_pid=""
controller_pid=""
agent_pid=""
stop() { # stop PID: SIGTERM, then wait for it to exit
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$agent_pid"
  stop "$controller_pid"
  stop "$controlplane_pid"
  stop "$registry_pid"
  rm -rf "$work" "$agent_root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
mkdir -p "$work/registry"
cat > "$work/registry.yml" <<YML
version: 0.1
log: { level: error }
storage:
  filesystem: { rootdirectory: $work/registry }
  delete: { enabled: true }
http: { addr: 127.0.0.1:$port }
YML
env -u REGISTRY_AUTH_FILE docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
ok=""
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { ok=1; break; }; sleep 0.1; done
[ -n "$ok" ] || { echo "registry did not start:" >&2; cat "$work/registry.log" >&2; exit 1; }
reg="127.0.0.1:$port"
echo "==> registry on $reg"

busybox=$(command -v busybox)
root="$work/rootfs"
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in sh ls cat echo true false id uname; do ln -s busybox "$root/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"

echo "==> stevedore import: busybox-static base image into an OCI layout (reproducible: fixed timestamp)"
$STEVEDORE import --cmd /bin/sh --timestamp 1700000000 -l org.opencontainers.image.title=busybox "$root" "oci:$work/layout:busybox"

echo "==> stevedore copy: OCI layout -> registry"
$STEVEDORE copy --progress none --digestfile "$work/digest" "oci:$work/layout:busybox" "docker://$reg/demo/busybox:1.0"
echo "    pushed $(cat "$work/digest")"

echo "==> stevedore copy: registry -> another repository (blobs mounted, nothing uploaded)"
$STEVEDORE copy --progress none "docker://$reg/demo/busybox:1.0" "docker://$reg/mirror/busybox:1.0"

echo "==> stevedore copy: registry -> OCI layout for an air-gapped site"
$STEVEDORE copy --progress none "docker://$reg/mirror/busybox:1.0" "oci:$work/export:busybox"

echo "==> stevedore inspect docker://$reg/mirror/busybox:1.0"
$STEVEDORE inspect "docker://$reg/mirror/busybox:1.0"

echo "==> stevedore list-tags docker://$reg/demo/busybox"
$STEVEDORE list-tags "docker://$reg/demo/busybox"

TS="node --import ./hack/lib/ts-resolve.ts"
KUBECTL="${KUBECTL:-$HOME/.cache/stevedore/bin/kubectl-v1.34.4}"
kubeconfig="$work/kubeconfig"

echo "==> local control plane: etcd + kube-apiserver on loopback, CRDs from crds/"
$TS hack/demo/controlplane.ts "$kubeconfig" >"$work/controlplane.log" 2>&1 &
controlplane_pid=$!
ok=""
for _ in $(seq 600); do
  grep -q '^READY' "$work/controlplane.log" 2>/dev/null && { ok=1; break; }
  kill -0 "$controlplane_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ok" ] || { echo "control plane did not start:" >&2; cat "$work/controlplane.log" >&2; exit 1; }
echo "    API server $(sed -n 's/^READY //p' "$work/controlplane.log")"

metrics_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
echo "==> stevedore controller --kubeconfig $kubeconfig --metrics-addr 127.0.0.1:$metrics_port (log: controller.log)"
# Build Pods name this image; the demo's kubelet stand-in runs it as `node bin/stevedore.js`.
$STEVEDORE controller --kubeconfig "$kubeconfig" --metrics-addr "127.0.0.1:$metrics_port" \
  --build-image stevedore.local/stevedore:demo --build-user-namespaces true >"$work/controller.log" 2>&1 &
controller_pid=$!

agent_metrics_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
echo "==> stevedore agent --node-name demo-node (node agent: pulls and runs ContainerRuns with runc; log: agent.log)"
$STEVEDORE agent --node-name demo-node --kubeconfig "$kubeconfig" --lease-namespace default --no-read-node-labels \
  --root "$agent_root/store" --metrics-addr "127.0.0.1:$agent_metrics_port" --poll-interval 250ms >"$work/agent.log" 2>&1 &
agent_pid=$!

echo "==> apply ImageMirror default/busybox ($reg/demo/busybox -> $reg/mirrored/busybox)"
$TS hack/demo/mirror.ts apply "$kubeconfig" "$reg/demo/busybox" "$reg/mirrored/busybox"

echo "==> wait for Ready=True (60 s)"
if ! $TS hack/demo/mirror.ts wait "$kubeconfig" 60; then
  echo "--- controller log ---" >&2
  cat "$work/controller.log" >&2
  exit 1
fi

kill -0 "$agent_pid" 2>/dev/null || { echo "the node agent stopped:" >&2; cat "$work/agent.log" >&2; exit 1; }
echo "==> the pipeline: ImageBuild -> ImageMirror -> ContainerRun"
if ! $TS hack/demo/pipeline.ts "$kubeconfig" "$reg" "$work"; then
  for log in controller agent; do echo "--- $log log (last 40 lines) ---" >&2; tail -n 40 "$work/$log.log" >&2; done
  exit 1
fi

if [ -x "$KUBECTL" ]; then
  echo "==> kubectl get stevedore -A"
  "$KUBECTL" --kubeconfig "$kubeconfig" get stevedore -A
  echo "==> kubectl get imagemirror busybox -o jsonpath={.status}"
  "$KUBECTL" --kubeconfig "$kubeconfig" get imagemirror busybox -o jsonpath='{.status}'; echo
else
  echo "==> (no kubectl at $KUBECTL) ImageMirrors through the API"
  $TS hack/demo/mirror.ts get "$kubeconfig"
fi

echo "==> stevedore inspect docker://$reg/mirrored/busybox:1.0"
$STEVEDORE inspect "docker://$reg/mirrored/busybox:1.0"
echo "==> demo finished"
