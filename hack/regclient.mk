# regctl and regsync (regclient), peers of the copy/sync benchmark (hack/bench/copy.sh).
# Included by the top-level Makefile:  -include hack/regclient.mk
#
#   make regclient   build regctl and regsync (once per pinned version) into the cache
#
# Built from the Go module at a pinned release into $(STEVEDORE_CACHE)/bin/<tool>-<version>, as
# hack/cosign.mk does; `make bench-copy` builds them first and hands their paths to the script.

REGCLIENT_VERSION := v0.11.7
STEVEDORE_CACHE ?= $(HOME)/.cache/stevedore
REGCTL ?= $(STEVEDORE_CACHE)/bin/regctl-$(REGCLIENT_VERSION)
REGSYNC ?= $(STEVEDORE_CACHE)/bin/regsync-$(REGCLIENT_VERSION)
export REGCTL REGSYNC

.PHONY: regclient

regclient: $(REGCTL) $(REGSYNC) ## Build regctl and regsync for the copy benchmark (cached by version)

$(STEVEDORE_CACHE)/bin/%-$(REGCLIENT_VERSION):
	@mkdir -p $(dir $@)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		CGO_ENABLED=0 GOBIN="$$tmp" go install -p=1 -trimpath -ldflags '-s -w' \
			github.com/regclient/regclient/cmd/$*@$(REGCLIENT_VERSION) && \
		mv "$$tmp/$*" $@.tmp && mv $@.tmp $@
