# Kubernetes control plane for tests, and kubectl.
# Included by the top-level Makefile:  include hack/controlplane.mk
#
#   make controlplane   build kube-apiserver (once per pinned version) into the cache
#   make kubectl        build kubectl at the same version (for humans, and make install/uninstall)
#
# The binaries live outside the repository, keyed by version, so switching
# branches or cleaning the tree never forces a rebuild:
#   $(STEVEDORE_CACHE)/bin/kube-apiserver-<version>
# etcd comes from the system (Debian's etcd-server, /usr/bin/etcd).

CONTROLPLANE_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/kube-apiserver
STEVEDORE_CACHE ?= $(HOME)/.cache/stevedore
KUBE_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ { print $$2; exit }' $(CONTROLPLANE_DIR)/go.mod)
KUBE_APISERVER ?= $(STEVEDORE_CACHE)/bin/kube-apiserver-$(KUBE_VERSION)
KUBECTL ?= $(STEVEDORE_CACHE)/bin/kubectl-$(KUBE_VERSION)
ETCD ?= $(shell command -v etcd 2>/dev/null || echo /usr/bin/etcd)
export KUBE_APISERVER KUBECTL ETCD

# Two parallel compile jobs keep memory use reasonable on small machines.
CONTROLPLANE_GOFLAGS ?= -p=2
KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(KUBE_VERSION:v%=%))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION:v%=%))) \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=$(word 1,$(subst ., ,$(KUBE_VERSION:v%=%))) \
	-X k8s.io/client-go/pkg/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION:v%=%)))

.PHONY: controlplane kubectl

controlplane: $(KUBE_APISERVER) ## Build kube-apiserver for integration tests (cached by version)

kubectl: $(KUBECTL) ## Build kubectl at the control plane's version (cached by version)

# The output name carries the version, so these rebuild only when go.mod pins
# a different k8s.io/kubernetes release.
$(KUBE_APISERVER):
	@mkdir -p $(dir $@)
	cd $(CONTROLPLANE_DIR) && CGO_ENABLED=0 go build $(CONTROLPLANE_GOFLAGS) -trimpath \
		-ldflags '$(KUBE_LDFLAGS)' -o $@.tmp . && mv $@.tmp $@

$(KUBECTL):
	@mkdir -p $(dir $@)
	cd $(CONTROLPLANE_DIR) && CGO_ENABLED=0 go build $(CONTROLPLANE_GOFLAGS) -trimpath \
		-ldflags '$(KUBE_LDFLAGS)' -o $@.tmp ./kubectl && mv $@.tmp $@
