# Stevedore — kubebuilder-style targets. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_BIN := node_modules/.bin
export PATH := $(CURDIR)/$(NODE_BIN):$(PATH)

include hack/controlplane.mk
# Optional fragments add tools the tests need to TEST_TOOLS (e.g. helm for the chart tests).
-include hack/helm.mk
# cosign (and other Go-built peers) for the supply-chain interoperability tests.
-include hack/cosign.mk
-include hack/syft.mk
-include hack/fuzz.mk

.PHONY: help deps install build typecheck test test-unit demo run image bench bench-copy bench-run bench-build bench-controller test-e2e clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install Debian packages the tests use (docker-registry, skopeo, runc, ...)
	hack/install-deps.sh

# npm ci runs only when the lock file changed since the last install.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed ## Install npm packages (pins Node 24 in node_modules/.bin/node)

build: install ## Compile TypeScript to dist/
	$(NODE_BIN)/tsc -p tsconfig.build.json

typecheck: install ## Type-check sources and tests
	$(NODE_BIN)/tsc -p tsconfig.json --noEmit

test: deps install controlplane $(TEST_TOOLS) typecheck build ## Run every test suite against real registries, runtimes and a real API server
	$(NODE_BIN)/vitest run

test-unit: install ## Run only the fast suites that need no external parts
	$(NODE_BIN)/vitest run test/build test/k8s/crds.test.ts

demo: deps build controlplane ## Registry, busybox-static image built by the engine, copies; control plane + controller mirroring it
	hack/demo.sh

run: build ## Run the controller against the current kubeconfig
	node bin/stevedore.js controller --leader-elect=false

image: build ## Build Stevedore's own image with stevedore build, base made from Debian packages (IMAGE=oci:DIR:TAG or registry/repo:tag)
	hack/image/build.sh

bench: bench-copy bench-run bench-build bench-controller ## Run every benchmark (prints ratios against the peer tools)

bench-copy: deps build ## stevedore copy/sync vs skopeo copy/sync
	hack/bench/copy.sh

test-e2e: ## On a machine with Docker: kind cluster, helm install, apply examples, wait for Ready
	hack/e2e-kind.sh

clean: ## Remove build output (not the control-plane cache)
	rm -rf dist

bench-run: deps build ## stevedore run vs podman run, warm and cold
	hack/bench/run.sh

bench-build: deps build ## stevedore build vs buildah bud --layers, cold and unchanged
	hack/bench/build.sh

bench-controller: deps build controlplane ## 1000 ImageMirrors on the local control plane: time to all Ready, controller RSS and CPU
	hack/bench/controller.sh
