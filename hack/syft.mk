# syft for the SBOM comparison (test/sbom/syft-compare.peer-test.ts), and the official SPDX and
# CycloneDX validators for test/sbom/validators.test.ts.
# Included by the top-level Makefile:  -include hack/syft.mk
#
#   make syft             build syft (once per pinned version) into the cache
#   make sbom-validators  a Python venv in the cache with the official SPDX and CycloneDX validators
#                         (part of make test: test/sbom/validators.test.ts uses them)
#   make test-sbom-peers  compare `stevedore sbom` with syft on a Debian-like image made by the test
#
# Built from Go modules at a pinned release (`go install github.com/anchore/syft/cmd/syft@<version>`,
# checksums from the Go checksum database) into $(STEVEDORE_CACHE)/bin/syft-<version>, outside the
# repository, so switching branches or cleaning the tree never forces a rebuild. The test finds it
# through the exported SYFT path (and falls back to the same cache path when run without make); when
# it is missing the comparison test says so and fails rather than passing vacuously.
#
# syft is not in TEST_TOOLS: from a cold Go cache it took 7 min 44 s on the 2-core machine (while
# cosign was building too), so `make test` does not wait for it; `make test-sbom-peers` runs the comparison.

SYFT_VERSION := v1.57.0
STEVEDORE_CACHE ?= $(HOME)/.cache/stevedore
SYFT ?= $(STEVEDORE_CACHE)/bin/syft-$(SYFT_VERSION)
export SYFT

# syft's dependency tree is large; one compile job keeps memory use low on small machines.
SYFT_GOFLAGS ?= -p=1

.PHONY: syft

syft: $(SYFT) ## Build syft for the SBOM comparison test (cached by version)

$(SYFT):
	@mkdir -p $(dir $@)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		CGO_ENABLED=0 GOBIN="$$tmp" go install $(SYFT_GOFLAGS) -trimpath \
			-ldflags '-s -w -X main.version=$(SYFT_VERSION)' \
			github.com/anchore/syft/cmd/syft@$(SYFT_VERSION) && \
		mv "$$tmp/syft" $@.tmp && mv $@.tmp $@

# spdx-tools (pyspdxtools) and cyclonedx-python-lib's strict JSON-schema validator, pinned, from PyPI.
# Quick to install (a pip install), so the suite validates our SBOMs with them on every `make test`.
SBOM_VENV ?= $(STEVEDORE_CACHE)/venv-sbom-validators
export SBOM_VENV
TEST_TOOLS += sbom-validators

.PHONY: sbom-validators test-sbom-peers

sbom-validators: $(SBOM_VENV)/.installed ## Python venv with the SPDX and CycloneDX validators (cached)

$(SBOM_VENV)/.installed:
	python3 -m venv $(SBOM_VENV)
	$(SBOM_VENV)/bin/pip install --quiet 'spdx-tools==0.8.5' 'cyclonedx-python-lib[json-validation]==11.12.0'
	@touch $@

test-sbom-peers: syft build ## Compare `stevedore sbom` with syft on a Debian-like image (prints the overlap)
	SYFT=$(SYFT) $(NODE_BIN)/vitest run --config test/sbom/vitest.syft.config.ts
