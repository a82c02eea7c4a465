#!/usr/bin/env bash
# Installs the system packages Stevedore's tests, demo and benchmarks use, from Debian's archive.
# Idempotent: does nothing when every package is already installed (so `make test` stays fast).
set -euo pipefail

PACKAGES=(
  docker-registry   # distribution 2.8: the real OCI registry the tests and demo run on loopback
  skopeo umoci      # interoperability peers for copy and OCI layouts
  podman buildah    # peers for run and build
  runc crun uidmap  # OCI runtimes and subuid tools for rootless containers
  busybox-static    # base images are made from it, never pulled
  etcd-server       # storage for the test control plane
  qemu-user-static  # foreign-architecture RUN steps
  apache2-utils     # htpasswd for the basic-auth test registry
  openssl           # certificates for the control plane and the token issuer
  hyperfine         # benchmarks
  curl              # readiness probes in scripts
  bc                # arithmetic in benchmark scripts
  python3-venv      # the official SPDX/CycloneDX validators (hack/syft.mk) run from a venv
  git               # Git build contexts (stevedore context git)
  xz-utils bzip2    # .tar.xz / .tar.bz2 build contexts and ADD archives
  passt slirp4netns # user-mode networking for run --network private and -p (pasta, slirp4netns fallback)
  iproute2          # ip inside a private network namespace (through nsenter); also copied into the image
  catatonit         # the init of run --init (podman's too): PID 1 that reaps zombies
  libseccomp-dev    # runc >= 1.2 built with seccomp for the local node (hack/node/build-runc.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
