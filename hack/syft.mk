# syft for the SBOM comparison test (test/sbom/syft-compare.test.ts).
# Included by the top-level Makefile:  -include hack/syft.mk
#
#   make syft        build syft (once per pinned version) into the cache
#   make test-syft   compare `stevedore sbom` with syft on a Debian-like image made by the test
#
# Built from Go modules at a pinned release (`go install github.com/anchore/syft/cmd/syft@<version>`,
# checksums from the Go checksum database) into $(STEVEDORE_CACHE)/bin/syft-<version>, outside the
# repository, so switching branches or cleaning the tree never forces a rebuild. The test finds it
# through the exported SYFT path (and falls back to the same cache path when run without make); when
# it is missing the comparison test says so and fails rather than passing vacuously.
#
# syft is not in TEST_TOOLS: from a cold Go cache it took 7 min 44 s on the 2-core machine (while
# cosign was building too), so `make test` does not wait for it; `make test-syft` runs the comparison.

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

.PHONY: test-syft
test-syft: syft build ## Compare `stevedore sbom` with syft on a Debian-like image (prints the overlap)
	SYFT=$(SYFT) $(NODE_BIN)/vitest run --config test/sbom/vitest.syft.config.ts
