# Helm for the chart tests (test/chart). Included by the top-level Makefile:  -include hack/helm.mk
#
#   make helm         build helm (once per pinned version) into the cache
#   make chart-crds   copy crds/ into charts/stevedore/crds/ (run after `make manifests`)
#   make chart-lint   helm lint --strict charts/stevedore
#
# helm is built from Go modules at a pinned release (`go install helm.sh/helm/v3/cmd/helm@<version>`,
# checksums from the Go checksum database) into $(STEVEDORE_CACHE)/bin/helm-<version>, so switching
# branches or cleaning the tree never forces a rebuild.

HELM_VERSION := v3.22.0
STEVEDORE_CACHE ?= $(HOME)/.cache/stevedore
HELM ?= $(STEVEDORE_CACHE)/bin/helm-$(HELM_VERSION)
export HELM

HELM_GOFLAGS ?= -p=2
CHART_DIR := charts/stevedore

TEST_TOOLS += helm

.PHONY: helm chart-crds chart-lint

helm: $(HELM) ## Build helm for the chart tests (cached by version)

$(HELM):
	@mkdir -p $(dir $@)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		CGO_ENABLED=0 GOBIN="$$tmp" go install $(HELM_GOFLAGS) -trimpath \
			-ldflags '-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)' \
			helm.sh/helm/v3/cmd/helm@$(HELM_VERSION) && \
		mv "$$tmp/helm" $@.tmp && mv $@.tmp $@

chart-crds: ## Copy crds/ into the chart (Helm installs them; it never upgrades or deletes them)
	rm -f $(CHART_DIR)/crds/*.yaml
	cp crds/*.yaml $(CHART_DIR)/crds/

chart-lint: $(HELM) ## helm lint --strict the chart
	$(HELM) lint --strict $(CHART_DIR)
