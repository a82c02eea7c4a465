#!/usr/bin/env bash
# Builds runc $RUNC_VERSION twice: a host binary (containerd's runtime on the local node)
# and a static one that Stevedore's image carries for RUN steps in build Pods.
# runc v1.3.x's go.mod replaces github.com/opencontainers/selinux with a nested module
# that is absent from the module zip, so `go install runc@v1.3.3` is refused: build a
# copy of the module source with that replace dropped (the upstream selinux release
# it names is used instead). Needs cgo and libseccomp-dev (hack/install-deps.sh).
set -euo pipefail
HOST_OUT=$1 STATIC_OUT=$2
V=${RUNC_VERSION:?}
GOFLAGS_EXTRA=${NODE_GOFLAGS:--p=2}
[ -e /usr/include/seccomp.h ] || { echo "build-runc: libseccomp-dev is missing (make deps)" >&2; exit 1; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
go mod download github.com/opencontainers/runc@"$V"
cp -r "$(go env GOMODCACHE)/github.com/opencontainers/runc@$V" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
if grep -q '^replace\|^\s*github.com/opencontainers/selinux =>' go.mod; then
  go mod edit -dropreplace github.com/opencontainers/selinux
  rm -rf vendor
  go mod tidy
fi
mkdir -p "$(dirname "$HOST_OUT")" "$(dirname "$STATIC_OUT")"
CGO_ENABLED=1 go build -mod=mod $GOFLAGS_EXTRA -trimpath -tags "seccomp urfave_cli_no_docs" \
  -ldflags "-s -w -X main.version=${V#v}" -o "$HOST_OUT.tmp" .
CGO_ENABLED=1 go build -mod=mod $GOFLAGS_EXTRA -trimpath -tags "seccomp urfave_cli_no_docs netgo osusergo static_build" \
  -ldflags "-s -w -X main.version=${V#v} -extldflags -static" -o "$STATIC_OUT.tmp" .
mv "$HOST_OUT.tmp" "$HOST_OUT"
mv "$STATIC_OUT.tmp" "$STATIC_OUT"
