# Fuzzing every parser of untrusted input (test/fuzz, docs/fuzzing.md).
# Included by the top-level Makefile:  -include hack/fuzz.mk
#
#   make fuzz                                   every target, 60 s each (17 targets: ~18 min)
#   make fuzz FUZZ_SECONDS=600                  longer
#   make fuzz FUZZ_TARGETS="tar-unpack policy"  some targets
#   make fuzz FUZZ_SEED=123                     a reproducible run (the seed is printed otherwise)
#
# One line per target: executions, V8 block coverage reached in the target's sources, corpus
# (seeds + inputs kept for reaching new blocks), findings. Fails when any target broke its contract;
# each finding is written under FUZZ_FINDINGS with its stack and the command that reproduces it.
# `make test` replays every corpus and fuzzes each target for about a second (test/fuzz/fuzz.test.ts).

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
FUZZ_FINDINGS ?= test/fuzz/findings
FUZZ_SEED ?=

.PHONY: fuzz

fuzz: ## Fuzz every parser for FUZZ_SECONDS each (default 60); fails on a crash, findings in FUZZ_FINDINGS
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS='$(FUZZ_TARGETS)' FUZZ_FINDINGS=$(FUZZ_FINDINGS) $(if $(FUZZ_SEED),FUZZ_SEED=$(FUZZ_SEED)) \
		node --experimental-transform-types --no-warnings=ExperimentalWarning --import ./hack/lib/ts-resolve.ts test/fuzz/run.ts
