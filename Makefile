# Stevedore — kubebuilder-style targets. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_BIN := node_modules/.bin
export PATH := $(CURDIR)/$(NODE_BIN):$(PATH)
# The pinned Node 24 from npm (node_modules/.bin/node); the system one may be older.
NODE ?= $(NODE_BIN)/node

include hack/controlplane.mk
include hack/schemas.mk
# Optional fragments add tools the tests need to TEST_TOOLS (e.g. helm for the chart tests).
-include hack/helm.mk
# cosign (and other Go-built peers) for the supply-chain interoperability tests.
-include hack/cosign.mk
# regctl and regsync, peers of the copy benchmark.
-include hack/regclient.mk
-include hack/syft.mk
# A real single node (kubelet + containerd + runc) for the end-to-end suite and cluster-up.
-include hack/node.mk
# Property-based fuzzing of every parser (make fuzz; make test replays the corpora briefly).
-include hack/fuzz.mk

##@ General

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^##@/ {printf "\n\033[1m%s\033[0m\n", substr($$0, 5)} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: deps node-modules build typecheck manifests generate fmt lint clean

deps: ## Install the Debian packages the tests use (docker-registry, skopeo, runc, ...)
	hack/install-deps.sh

# npm ci runs only when the lock file changed since the last install.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

node-modules: node_modules/.installed ## Install the npm packages (pins Node 24 in node_modules/.bin/node)

build: node-modules ## Compile TypeScript to dist/
	$(NODE_BIN)/tsc -p tsconfig.build.json

typecheck: node-modules ## Type-check sources and tests
	$(NODE_BIN)/tsc -p tsconfig.json --noEmit

manifests: node-modules ## Generate the CRDs (crds/ and the chart's copy) from the API types in src/k8s/api/
	$(NODE) --import ./hack/lib/ts-resolve.ts hack/gen-crds.ts
	rm -f charts/stevedore/crds/*.yaml
	cp crds/*.yaml charts/stevedore/crds/

generate: manifests ## Regenerate every generated file (today: the CRDs; no code is generated)

fmt: node-modules ## Format every file Biome covers (biome.json: src, test, hack, bin) in place
	$(NODE_BIN)/biome format --write

lint: node-modules ## Lint and check formatting with Biome (rules in biome.json); `make fmt` fixes the formatting
	$(NODE_BIN)/biome check

clean: ## Remove build output (not the tool cache)
	rm -rf dist

##@ Test

.PHONY: test test-unit test-e2e

test: deps node-modules controlplane schemas $(TEST_TOOLS) lint typecheck build ## Lint, then every test suite against real registries, runtimes and a real API server
	$(NODE_BIN)/vitest run

# Test files that need no external part: no registry, OCI runtime, peer tool (skopeo, buildah,
# podman, umoci, cosign, git...), API server or network; only Node, the npm packages and the OCI
# schemas. Checked by running them with every such tool off PATH and an empty tool cache.
UNIT_TESTS := \
	test/agent/agent-logic.test.ts \
	test/agent/env-volumes.test.ts \
	test/agent/runtime-liveness-jobfile.test.ts \
	test/architecture/import-boundaries.test.ts \
	test/attest/dsse.test.ts \
	test/build/context-ignore.test.ts \
	test/build/expand.test.ts \
	test/build/heredoc.test.ts \
	test/build/layers-materialize.test.ts \
	test/build/layers-url.test.ts \
	test/build/layers-writer.test.ts \
	test/build/output-compress.test.ts \
	test/build/parser.test.ts \
	test/build/source-policy-re2.test.ts \
	test/build/stages.test.ts \
	test/cli/lazy-logger.test.ts \
	test/cli/node-version.test.ts \
	test/controllers/imagebuild-pod.test.ts \
	test/controllers/imagemirror-plan.test.ts \
	test/controllers/runtime.test.ts \
	test/copy/convert.test.ts \
	test/k8s/crds.test.ts \
	test/policy/parse.test.ts \
	test/registry/context-credentials.test.ts \
	test/registry/credentials.test.ts \
	test/registry/protocol.test.ts \
	test/runtime/spec.test.ts \
	test/runtime/store-interrupt.test.ts \
	test/runtime/store-linktree.test.ts \
	test/runtime/unpack-busybox.test.ts \
	test/runtime/unpack-hostile.test.ts \
	test/runtime/unpack.test.ts \
	test/runtime/userns-ids.test.ts \
	test/sbom/formats.test.ts \
	test/util/duration.test.ts \
	test/util/version.test.ts

test-unit: node-modules schemas ## Run only the test files that need no external part (UNIT_TESTS)
	$(NODE_BIN)/vitest run $(UNIT_TESTS)

test-e2e: ## On a machine with Docker: kind cluster, helm install, apply examples, wait for Ready
	hack/e2e-kind.sh

##@ Deployment (the cluster of the current kubeconfig)

NAMESPACE ?= stevedore-system
RELEASE ?= stevedore
# IMG=registry[:port]/repo:tag deploys that controller image instead of the chart's default (split
# at the last colon, so a registry port stays in the repository).
IMG ?=
export IMG

.PHONY: install uninstall deploy undeploy run

install: $(KUBECTL) ## Install the CRDs into the cluster
	$(KUBECTL) apply --server-side -f crds/

uninstall: $(KUBECTL) ## Remove the CRDs (and so every ImageBuild, ImageMirror and ContainerRun) from the cluster
	$(KUBECTL) delete --ignore-not-found -f crds/

deploy: $(HELM) ## Install or upgrade the chart (controller, RBAC, CRDs) in NAMESPACE (IMG=... for another image)
	$(HELM) upgrade --install $(RELEASE) charts/stevedore --namespace $(NAMESPACE) --create-namespace --reset-values \
		$${IMG:+--set image.repository="$${IMG%:*}" --set image.tag="$${IMG##*:}"}

undeploy: $(HELM) ## Uninstall the chart (the CRDs stay: Helm never deletes them; make uninstall does)
	$(HELM) uninstall $(RELEASE) --namespace $(NAMESPACE) --ignore-not-found

run: build ## Run the controller against the current kubeconfig
	$(NODE) bin/stevedore.js controller --leader-elect=false

##@ Demo, image and benchmarks

.PHONY: demo image bench bench-copy bench-run bench-build bench-controller

demo: deps build controlplane ## Registry, busybox-static image built by the engine, copies; control plane + controller mirroring it
	hack/demo.sh

image: build ## Build Stevedore's own image with stevedore build, base made from Debian packages (IMAGE=oci:DIR:TAG or registry/repo:tag)
	hack/image/build.sh

bench: bench-copy bench-run bench-build bench-controller ## Run every benchmark (prints ratios against the peer tools)

bench-copy: deps build crane regclient ## stevedore copy/sync vs skopeo, crane, regctl and regsync
	hack/bench/copy.sh

bench-run: deps build ## stevedore run vs podman run, warm and cold
	hack/bench/run.sh

bench-build: deps build ## stevedore build vs buildah bud --layers, cold and unchanged
	hack/bench/build.sh

bench-controller: deps build controlplane ## 1000 ImageMirrors on the local control plane: time to all Ready, controller RSS and CPU
	hack/bench/controller.sh

##@ Tools (built or fetched once per pinned version into ~/.cache/stevedore; targets from hack/*.mk)
