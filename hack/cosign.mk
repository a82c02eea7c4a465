# cosign and crane for the supply-chain interoperability tests (test/sign, test/policy).
# Included by the top-level Makefile:  -include hack/cosign.mk
#
#   make cosign   build cosign (once per pinned version) into the cache
#   make crane    build crane (once per pinned version) into the cache
#
# Both are built from Go modules at pinned releases (`go install <module>/cmd/<tool>@<version>`,
# checksums from the Go checksum database) into $(STEVEDORE_CACHE)/bin/<tool>-<version>, so
# switching branches or cleaning the tree never forces a rebuild. The tests find them through the
# exported COSIGN and CRANE paths (and fall back to the same cache paths when run without make).

COSIGN_VERSION := v2.6.5
CRANE_VERSION := v0.22.1
STEVEDORE_CACHE ?= $(HOME)/.cache/stevedore
COSIGN ?= $(STEVEDORE_CACHE)/bin/cosign-$(COSIGN_VERSION)
CRANE ?= $(STEVEDORE_CACHE)/bin/crane-$(CRANE_VERSION)
export COSIGN CRANE

# cosign pulls in a large dependency tree; one compile job keeps memory use low on small machines.
COSIGN_GOFLAGS ?= -p=1

TEST_TOOLS += cosign crane

.PHONY: cosign crane

cosign: $(COSIGN) ## Build cosign for the signature interoperability tests (cached by version)

crane: $(CRANE) ## Build crane for the signature tests (cached by version)

$(COSIGN):
	@mkdir -p $(dir $@)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		CGO_ENABLED=0 GOBIN="$$tmp" go install $(COSIGN_GOFLAGS) -trimpath \
			-ldflags '-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$(COSIGN_VERSION)' \
			github.com/sigstore/cosign/v2/cmd/cosign@$(COSIGN_VERSION) && \
		mv "$$tmp/cosign" $@.tmp && mv $@.tmp $@

$(CRANE):
	@mkdir -p $(dir $@)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		CGO_ENABLED=0 GOBIN="$$tmp" go install $(COSIGN_GOFLAGS) -trimpath -ldflags '-s -w' \
			github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION) && \
		mv "$$tmp/crane" $@.tmp && mv $@.tmp $@
