#!/usr/bin/env bash
# End to end on a kind cluster, for machines with Docker (`make test-e2e`):
#   kind cluster -> controller image built from dist/ and loaded into kind -> helm install charts/stevedore
#   into a namespace that enforces the "restricted" Pod Security Standard -> a registry in the cluster
#   holding three tags of a small busybox-based image -> examples/imagemirror.yaml pointed at it -> wait
#   until every ImageMirror is Ready and check the mirrored tags -> an ImageBuild (inline Containerfile
#   FROM a mirrored tag) pushed to the same registry -> a ContainerRun of that build run by the node agent
#   (chart value agent.enabled=true), checked for its output. Logs and events are dumped on failure;
#   the cluster is deleted on exit (KEEP_CLUSTER=1 keeps it).
#
# Needs: docker, kind, kubectl, curl, node (npm packages from `make node-modules`); helm from $HELM, PATH or
# `make helm`. No image is pulled for the test content; the in-cluster registry uses $REGISTRY_IMAGE.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-stevedore-e2e}
IMAGE=${IMAGE:-stevedore:e2e}
REGISTRY_IMAGE=${REGISTRY_IMAGE:-registry:2}
BUSYBOX_IMAGE=${BUSYBOX_IMAGE:-busybox:1.36}
# kind nodes without user-namespace support for Pods: USERNS=false runs build Pods with hostUsers: true.
USERNS=${USERNS:-false}
SYSTEM_NS=stevedore-system
APP_NS=e2e
LOCAL_PORT=${LOCAL_PORT:-5001}
IN_CLUSTER_REGISTRY=registry.${APP_NS}.svc.cluster.local:5000

for tool in docker kind kubectl curl node; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: $tool is required" >&2; exit 2; }
done
if [[ -z ${HELM:-} ]]; then
  HELM=$(command -v helm || true)
  if [[ -z $HELM ]]; then
    make helm
    HELM=${STEVEDORE_CACHE:-$HOME/.cache/stevedore}/bin/helm-$(awk '$1 == "HELM_VERSION" { print $3 }' hack/helm.mk)
  fi
fi

work=$(mktemp -d)
pf_pid=""
cleanup() {
  local rc=$?
  if (( rc != 0 )); then
    echo "=== e2e failed (exit $rc): cluster state and logs ===" >&2
    kubectl get all,leases -n "$SYSTEM_NS" -o wide >&2 || true
    kubectl get stevedore -A -o yaml >&2 || true
    kubectl get events -A --sort-by=.lastTimestamp >&2 || true
    kubectl logs -n "$SYSTEM_NS" -l app.kubernetes.io/name=stevedore --all-containers --prefix --tail=-1 >&2 || true
    kubectl logs -n "$APP_NS" deployment/registry --tail=100 >&2 || true
  fi
  if [[ -n $pf_pid ]]; then kill "$pf_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  if [[ ${KEEP_CLUSTER:-0} != 1 ]]; then kind delete cluster --name "$CLUSTER" || true; fi
  exit "$rc"
}
trap cleanup EXIT

echo "--- kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --wait 120s
kubectl config use-context "kind-$CLUSTER"

echo "--- controller image $IMAGE"
if make -n image >/dev/null 2>&1; then
  # Stevedore builds its own image (make image), written as a docker-archive for `docker load`.
  make image IMAGE="docker-archive:$work/stevedore.tar:$IMAGE"
  docker load -i "$work/stevedore.tar"
else
  # No image target yet: a small Node 24 image with the compiled dist/ and production dependencies.
  make build
  mkdir -p "$work/image"
  cp -r package.json package-lock.json bin dist "$work/image/"
  cat >"$work/image/Dockerfile" <<'EOF'
FROM node:24-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY dist ./dist
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/stevedore.js"]
EOF
  docker build -t "$IMAGE" "$work/image"
fi
kind load docker-image "$IMAGE" --name "$CLUSTER"

echo "--- helm install charts/stevedore"
kubectl create namespace "$SYSTEM_NS"
kubectl label namespace "$SYSTEM_NS" pod-security.kubernetes.io/enforce=restricted
"$HELM" install stevedore charts/stevedore --namespace "$SYSTEM_NS" \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set agent.enabled=true --set buildPods.userNamespaces="$USERNS" \
  --wait --timeout 180s
kubectl -n "$SYSTEM_NS" get pods -o wide

echo "--- registry in the cluster, three tags of a busybox-based image"
kubectl create namespace "$APP_NS"
kubectl -n "$APP_NS" create deployment registry --image="$REGISTRY_IMAGE" --port=5000
kubectl -n "$APP_NS" expose deployment registry --port=5000
kubectl -n "$APP_NS" rollout status deployment/registry --timeout=180s
kubectl -n "$APP_NS" port-forward svc/registry "$LOCAL_PORT:5000" >/dev/null &
pf_pid=$!
for _ in $(seq 60); do curl -fsS "http://localhost:$LOCAL_PORT/v2/" >/dev/null 2>&1 && break; sleep 1; done
mkdir -p "$work/app"
for tag in 1.0.0 1.1.0 2.0.0; do
  echo "app $tag" >"$work/app/version"
  printf 'FROM %s\nCOPY version /version\nCMD ["cat", "/version"]\n' "$BUSYBOX_IMAGE" >"$work/app/Dockerfile"
  docker build -q -t "localhost:$LOCAL_PORT/org/app:$tag" "$work/app"
  docker push -q "localhost:$LOCAL_PORT/org/app:$tag"
done

echo "--- examples/imagemirror.yaml against $IN_CLUSTER_REGISTRY"
# shellcheck disable=SC2016 # a JavaScript template literal, not shell
REG=$IN_CLUSTER_REGISTRY node --input-type=module -e '
import { readFileSync } from "node:fs";
import { parse, stringify } from "yaml";
const m = parse(readFileSync("examples/imagemirror.yaml", "utf8"));
const reg = process.env.REG;
m.spec.source.registry = { repository: `${reg}/org/app`, insecure: true };
m.spec.destination.registry = { repository: `${reg}/mirror/org/app`, insecure: true };
process.stdout.write(stringify(m));
' | kubectl -n "$APP_NS" apply -f -
kubectl -n "$APP_NS" wait --for=condition=Ready imagemirror --all --timeout=180s
kubectl get stevedore -A

# The example selects ">=1.0.0 <2.0.0": 1.0.0 and 1.1.0 are mirrored, 2.0.0 is not.
tags=$(curl -fsS "http://localhost:$LOCAL_PORT/v2/mirror/org/app/tags/list")
echo "mirrored: $tags"
if ! grep -q '"1.0.0"' <<<"$tags" || ! grep -q '"1.1.0"' <<<"$tags" || grep -q '"2.0.0"' <<<"$tags"; then
  echo "e2e-kind: unexpected mirrored tags: $tags" >&2
  exit 1
fi

echo "--- ImageBuild: inline Containerfile FROM the mirrored 1.1.0, pushed to $IN_CLUSTER_REGISTRY/built/app:1"
kubectl -n "$APP_NS" apply -f - <<YAML
apiVersion: stevedore.dev/v1alpha1
kind: ImageBuild
metadata: { name: e2e }
spec:
  source:
    inline:
      containerfile: |
        FROM $IN_CLUSTER_REGISTRY/mirror/org/app:1.1.0
        LABEL org.example.e2e=kind
        CMD ["cat", "/version"]
  output: { image: "$IN_CLUSTER_REGISTRY/built/app:1", insecure: true }
  timeout: 10m
YAML
kubectl -n "$APP_NS" wait --for=condition=Ready imagebuild/e2e --timeout=600s
kubectl -n "$APP_NS" get imagebuild e2e -o jsonpath='{.status.imageDigest}{"\n"}'

echo "--- ContainerRun of the built image on a node agent"
# The agent pulls through the node's network: the registry's ClusterIP, not its cluster DNS name.
REG_IP=$(kubectl -n "$APP_NS" get svc registry -o jsonpath='{.spec.clusterIP}'):5000
kubectl -n "$APP_NS" apply -f - <<YAML
apiVersion: stevedore.dev/v1alpha1
kind: ContainerRun
metadata: { name: e2e }
spec:
  image: $REG_IP/built/app:1
  timeout: 5m
YAML
kubectl -n "$APP_NS" wait --for=jsonpath='{.status.phase}'=Succeeded containerrun/e2e --timeout=300s
out=$(kubectl -n "$APP_NS" get containerrun e2e -o jsonpath='{.status.logTail}')
echo "run output: $out"
[[ $out == *"app 1.1.0"* ]] || { echo "e2e-kind: unexpected ContainerRun output: $out" >&2; exit 1; }
kubectl get stevedore -A
echo "--- e2e passed"
