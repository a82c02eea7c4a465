# A real single-node Kubernetes for tests and demos: kubelet + containerd 2 + runc,
# built from Go modules (one pinned version per part) and cached beside kube-apiserver.
# Included by the top-level Makefile:  -include hack/node.mk
#
#   make node-tools      build every node part into $(STEVEDORE_CACHE)/bin (once per version)
#   make cluster-up      registry + etcd + apiserver + containerd + kubelet + scheduler +
#                        controller-manager; kubeconfig at $(NODE_DIR)/admin.kubeconfig
#   make cluster-down    stop all of it (by recorded PID) and clean mounts, netns, bridge
#   make test-e2e-local  the end-to-end suite on the real node (test/e2e-local)
#   make demo-node       the chart's end-to-end run on a fresh node, printing what a user sees
#
# The Kubernetes parts share hack/kube-apiserver's version (KUBE_VERSION, from
# controlplane.mk) so the API server and the node never drift apart.

NODE_HACK := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/node
STEVEDORE_CACHE ?= $(HOME)/.cache/stevedore
NODE_CACHE_BIN := $(STEVEDORE_CACHE)/bin

CONTAINERD_VERSION := v2.2.9
RUNC_VERSION := v1.3.3
CNI_PLUGINS_VERSION := v1.6.2
CRICTL_VERSION := v1.34.0
# Bump when hack/node/pause or hack/node/seccompgen change.
NODE_HELPERS_VERSION := 1

KUBELET ?= $(NODE_CACHE_BIN)/kubelet-$(KUBE_VERSION)
KUBE_SCHEDULER ?= $(NODE_CACHE_BIN)/kube-scheduler-$(KUBE_VERSION)
KUBE_CONTROLLER_MANAGER ?= $(NODE_CACHE_BIN)/kube-controller-manager-$(KUBE_VERSION)
# A directory: containerd finds its shim by name on PATH.
CONTAINERD_DIR ?= $(NODE_CACHE_BIN)/containerd-$(CONTAINERD_VERSION)
RUNC ?= $(NODE_CACHE_BIN)/runc-$(RUNC_VERSION)
RUNC_STATIC ?= $(NODE_CACHE_BIN)/runc-static-$(RUNC_VERSION)
CNI_BIN_DIR ?= $(NODE_CACHE_BIN)/cni-plugins-$(CNI_PLUGINS_VERSION)
CRICTL ?= $(NODE_CACHE_BIN)/crictl-$(CRICTL_VERSION)
NODE_PAUSE ?= $(NODE_CACHE_BIN)/stevedore-pause-$(NODE_HELPERS_VERSION)
SECCOMPGEN ?= $(NODE_CACHE_BIN)/stevedore-seccompgen-$(CONTAINERD_VERSION)-$(NODE_HELPERS_VERSION)
NODE_DIR ?= $(STEVEDORE_CACHE)/node
export KUBELET KUBE_SCHEDULER KUBE_CONTROLLER_MANAGER CONTAINERD_DIR RUNC RUNC_STATIC CNI_BIN_DIR CRICTL NODE_PAUSE SECCOMPGEN NODE_DIR

NODE_GOFLAGS ?= -p=2
CONTAINERD_PKG := github.com/containerd/containerd/v2
CONTAINERD_LDFLAGS := -s -w -X $(CONTAINERD_PKG)/version.Version=$(CONTAINERD_VERSION) -X $(CONTAINERD_PKG)/version.Package=$(CONTAINERD_PKG)
CONTAINERD_TAGS := urfave_cli_no_docs osusergo netgo static_build
CNI_PKG := github.com/containernetworking/plugins/plugins

NODE_TOOLS := $(KUBE_APISERVER) $(KUBECTL) $(KUBELET) $(KUBE_SCHEDULER) $(KUBE_CONTROLLER_MANAGER) \
	$(CONTAINERD_DIR)/containerd $(RUNC) $(RUNC_STATIC) $(CNI_BIN_DIR)/bridge $(CRICTL) $(NODE_PAUSE) $(SECCOMPGEN)

# `make test` runs test/e2e-local too (it passed twice in a row on its own and within the whole
# vitest run): it needs every node part and Stevedore's image (rebuilt only when its inputs change).
TEST_TOOLS += node-tools image

.PHONY: node-tools cluster-up cluster-down test-e2e-local demo-node

node-tools: $(NODE_TOOLS) ## Build kubelet, scheduler, controller-manager, containerd, runc, CNI, crictl (cached by version)

$(KUBELET):
	@mkdir -p $(dir $@)
	cd $(NODE_HACK)/kube && CGO_ENABLED=0 go build $(NODE_GOFLAGS) -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@.tmp ./kubelet && mv $@.tmp $@

$(KUBE_SCHEDULER):
	@mkdir -p $(dir $@)
	cd $(NODE_HACK)/kube && CGO_ENABLED=0 go build $(NODE_GOFLAGS) -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@.tmp ./scheduler && mv $@.tmp $@

$(KUBE_CONTROLLER_MANAGER):
	@mkdir -p $(dir $@)
	cd $(NODE_HACK)/kube && CGO_ENABLED=0 go build $(NODE_GOFLAGS) -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@.tmp ./controller-manager && mv $@.tmp $@

# containerd's go.mod has no replace directive, so `go install pkg@version` works.
# CGO off drops only the btrfs snapshotter; the shim is built without gRPC (ttrpc only).
$(CONTAINERD_DIR)/containerd:
	rm -rf $(CONTAINERD_DIR).tmp && mkdir -p $(CONTAINERD_DIR).tmp
	GOBIN=$(CONTAINERD_DIR).tmp CGO_ENABLED=0 go install $(NODE_GOFLAGS) -trimpath -tags '$(CONTAINERD_TAGS)' \
		-ldflags '$(CONTAINERD_LDFLAGS)' $(CONTAINERD_PKG)/cmd/containerd@$(CONTAINERD_VERSION) $(CONTAINERD_PKG)/cmd/ctr@$(CONTAINERD_VERSION)
	GOBIN=$(CONTAINERD_DIR).tmp CGO_ENABLED=0 go install $(NODE_GOFLAGS) -trimpath -tags '$(CONTAINERD_TAGS) no_grpc' \
		-ldflags '$(CONTAINERD_LDFLAGS)' $(CONTAINERD_PKG)/cmd/containerd-shim-runc-v2@$(CONTAINERD_VERSION)
	rm -rf $(CONTAINERD_DIR) && mv $(CONTAINERD_DIR).tmp $(CONTAINERD_DIR)

# runc: host binary (containerd's runtime) and a static one for Stevedore's image.
$(RUNC) $(RUNC_STATIC) &:
	RUNC_VERSION=$(RUNC_VERSION) NODE_GOFLAGS='$(NODE_GOFLAGS)' $(NODE_HACK)/build-runc.sh $(RUNC) $(RUNC_STATIC)

$(CNI_BIN_DIR)/bridge:
	rm -rf $(CNI_BIN_DIR).tmp && mkdir -p $(CNI_BIN_DIR).tmp
	GOBIN=$(CNI_BIN_DIR).tmp CGO_ENABLED=0 go install $(NODE_GOFLAGS) -trimpath -ldflags '-s -w' \
		$(CNI_PKG)/main/bridge@$(CNI_PLUGINS_VERSION) $(CNI_PKG)/main/loopback@$(CNI_PLUGINS_VERSION) $(CNI_PKG)/ipam/host-local@$(CNI_PLUGINS_VERSION)
	rm -rf $(CNI_BIN_DIR) && mv $(CNI_BIN_DIR).tmp $(CNI_BIN_DIR)

$(CRICTL):
	@mkdir -p $(dir $@)
	rm -rf $@.d && mkdir -p $@.d
	GOBIN=$@.d CGO_ENABLED=0 go install $(NODE_GOFLAGS) -trimpath -ldflags '-s -w' sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION)
	mv $@.d/crictl $@ && rm -rf $@.d

$(NODE_PAUSE): $(NODE_HACK)/pause/main.go
	@mkdir -p $(dir $@)
	cd $(NODE_HACK)/pause && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $@.tmp . && mv $@.tmp $@

$(SECCOMPGEN): $(NODE_HACK)/seccompgen/main.go
	@mkdir -p $(dir $@)
	cd $(NODE_HACK)/seccompgen && CGO_ENABLED=0 go build $(NODE_GOFLAGS) -trimpath -ldflags '-s -w' -o $@.tmp . && mv $@.tmp $@

# Stevedore's image carries the static runc (RUN steps in build Pods, the agent's runtime).
image: $(RUNC_STATIC)

cluster-up: node-tools build ## Start a real single node (kubelet + containerd) with its control plane; prints the kubeconfig path
	$(NODE) --import ./hack/lib/ts-resolve.ts hack/node/cluster.ts up

cluster-down: ## Stop the real node started by cluster-up and clean up after it
	$(NODE) --import ./hack/lib/ts-resolve.ts hack/node/cluster.ts down

test-e2e-local: deps node-modules node-tools helm build image ## End-to-end suite on the real node: helm install, ImageBuild/ImageMirror/ContainerRun
	$(NODE_BIN)/vitest run --config test/e2e-local/vitest.config.ts

# The chart's end-to-end file with what a user would see printed (kubectl get, build Pod spec).
demo-node: deps node-modules node-tools helm build image ## One command: a real node, the chart installed with helm, a build Pod, a mirror and a run on it
	STEVEDORE_DEMO=1 $(NODE_BIN)/vitest run --config test/e2e-local/vitest.config.ts --reporter=verbose test/e2e-local/chart.test.ts
