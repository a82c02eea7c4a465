# OCI JSON Schemas for the tests (image manifests, indexes, configs; runtime config.json).
# Included by the top-level Makefile:  include hack/schemas.mk
#
#   make schemas   fetch the schemas at the pinned versions into the cache
#
# The schemas are published in the Go modules github.com/opencontainers/image-spec and
# github.com/opencontainers/runtime-spec (folder schema/). `go mod download` fetches each module at
# its pinned version (checksums from the Go checksum database) and its schema/*.json files are copied
# to $(STEVEDORE_CACHE)/schemas/<module>-<version>/, outside the repository, keyed by version.
# The tests read the folders from OCI_IMAGE_SCHEMA_DIR / OCI_RUNTIME_SCHEMA_DIR (exported here); run
# without make, they derive the same paths from the versions below (hack/lib/harness/schema.ts).

# The newest releases whose schemas load: runtime-spec v1.3.0's config-vm.json has a broken ref
# ("#definitions/uint32", fixed after the release), so no validator can be compiled from it.
OCI_IMAGE_SPEC_VERSION := v1.1.1
OCI_RUNTIME_SPEC_VERSION := v1.2.1
STEVEDORE_CACHE ?= $(HOME)/.cache/stevedore
OCI_IMAGE_SCHEMA_DIR ?= $(STEVEDORE_CACHE)/schemas/image-spec-$(OCI_IMAGE_SPEC_VERSION)
OCI_RUNTIME_SCHEMA_DIR ?= $(STEVEDORE_CACHE)/schemas/runtime-spec-$(OCI_RUNTIME_SPEC_VERSION)
export OCI_IMAGE_SCHEMA_DIR OCI_RUNTIME_SCHEMA_DIR

.PHONY: schemas

schemas: $(OCI_IMAGE_SCHEMA_DIR)/.complete $(OCI_RUNTIME_SCHEMA_DIR)/.complete ## Fetch the OCI image- and runtime-spec JSON Schemas (pinned) into the cache

# $(1): module path, $(2): version. Run from / so no go.mod around changes what is fetched. The folder is filled beside its final name and renamed, so an
# interrupted fetch never leaves a half-copied folder that looks complete.
define fetch-schemas
	@mkdir -p $(dir $(@D))
	@dir=$$(cd / && GO111MODULE=on go mod download -json $(1)@$(2) \
		| sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$$/\1/p') && \
	if [ -z "$$dir" ] || [ ! -d "$$dir/schema" ]; then echo "go mod download $(1)@$(2) gave no schema/ folder" >&2; exit 1; fi && \
	rm -rf $(@D).tmp && mkdir -p $(@D).tmp && cp "$$dir"/schema/*.json $(@D).tmp/ && \
	touch $(@D).tmp/.complete && rm -rf $(@D) && mv $(@D).tmp $(@D)
	@echo "schemas: $(1)@$(2) -> $(@D)"
endef

$(OCI_IMAGE_SCHEMA_DIR)/.complete:
	$(call fetch-schemas,github.com/opencontainers/image-spec,$(OCI_IMAGE_SPEC_VERSION))

$(OCI_RUNTIME_SCHEMA_DIR)/.complete:
	$(call fetch-schemas,github.com/opencontainers/runtime-spec,$(OCI_RUNTIME_SPEC_VERSION))
