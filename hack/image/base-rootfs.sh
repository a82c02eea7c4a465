#!/usr/bin/env bash
# Root filesystem of Stevedore's base image, made from Debian packages with no download: the
# packages that own the shared libraries of node, git and ssh (found with ldd + dpkg -S) are copied
# whole (dpkg -L), plus git and openssh-client themselves, the pinned Node.js binary, CA
# certificates, and /etc/passwd with the unprivileged user 65532 the build Pods run as.
# Everything the builder spawns is in it too: runc >= 1.2 (static, from `make node-tools`: RUN steps
# in build Pods), and Debian's own cp (coreutils) and unshare (util-linux) with their libraries.
# dash is /bin/sh: an ImageBuild script source runs in the build Pod with it (`stevedore script`).
# What the agent runs for a ContainerRun's `network: private` (src/runtime/network): pasta (passt),
# slirp4netns (where pasta fails), ip (iproute2) inside the run's namespace through nsenter
# (util-linux), umount (mount) to free the namespace's bind mount, and mount for the store's overlay rootfs.
#
#   hack/image/base-rootfs.sh OUTDIR
set -euo pipefail
out=${1:?usage: $0 OUTDIR}
cd "$(dirname "$0")/../.."
node=$(readlink -f node_modules/.bin/node)
[ -x "$node" ] || { echo "no pinned node in node_modules/.bin (run make node-modules)" >&2; exit 1; }
runc_static=${RUNC_STATIC:-}
if [ -z "$runc_static" ]; then
  v=$(awk '$1 == "RUNC_VERSION" { print $3 }' hack/node.mk)
  runc_static=${STEVEDORE_CACHE:-$HOME/.cache/stevedore}/bin/runc-static-$v
fi
[ -x "$runc_static" ] || { echo "no static runc at $runc_static (run make node-tools)" >&2; exit 1; }
for tool in git ssh dpkg ldd cp tar unshare nsenter mount umount ip pasta slirp4netns; do command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }; done

rm -rf "$out"
mkdir -p "$out"
bins=("$node" "$(command -v git)" /usr/lib/git-core/git-remote-http "$(command -v ssh)" "$(command -v cp)" "$(command -v tar)" "$(command -v unshare)"
      "$(command -v nsenter)" "$(command -v mount)" "$(command -v umount)" "$(command -v ip)" "$(command -v pasta)" "$(command -v slirp4netns)")
libs=$(for b in "${bins[@]}"; do ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; done | sort -u)
pkgs=$(for l in $libs; do dpkg -S "$l" 2>/dev/null || dpkg -S "$(readlink -f "$l")"; done | cut -d: -f1 | sort -u)
pkgs="$pkgs git git-man openssh-client dash passt slirp4netns iproute2"
for p in $(echo "$pkgs" | tr ' ' '\n' | sort -u); do
  dpkg -L "$p" | while read -r f; do
    # Files and links only (directories come with them); docs and manuals are left out.
    case "$f" in /usr/share/doc/*|/usr/share/man/*|/usr/share/locale/*|/usr/share/lintian/*|/etc/bash_completion.d/*|/usr/share/bash-completion/*) continue ;; esac
    # Paths go through the host's usrmerge links (/lib -> usr/lib), which the image gets too.
    case "$f" in /lib|/lib64|/bin|/sbin|/lib32|/libx32) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then
      dir=$(readlink -f "$(dirname "$f")")
      mkdir -p "$out$dir" && cp -a "$f" "$out$dir/"
    fi
  done
done
for d in lib lib64 bin sbin; do
  if [ -L "/$d" ]; then ln -sfn "$(readlink "/$d")" "$out/$d"; fi
done
install -D -m 0755 "$node" "$out/usr/local/bin/node"
install -D -m 0755 "$runc_static" "$out/usr/local/bin/runc"
# Only these binaries of coreutils, tar, util-linux and mount (their libraries came with the packages above).
install -D -m 0755 "$(readlink -f "$(command -v cp)")" "$out/usr/bin/cp"
# GNU tar: the builder reads overlay opaque markers (xattrs) of a RUN step's upper directory with
# `tar --xattrs` when its store mounts overlay (src/build/layers/overlay-xattrs.ts).
install -D -m 0755 "$(readlink -f "$(command -v tar)")" "$out/usr/bin/tar"
for b in unshare nsenter mount umount; do install -D -m 0755 "$(readlink -f "$(command -v "$b")")" "$out/usr/bin/$b"; done
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$out/tmp" "$out/home/stevedore" "$out/etc"
chmod 1777 "$out/tmp"
chown 65532:65532 "$out/home/stevedore"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nstevedore:x:65532:65532:stevedore:/home/stevedore:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$out/etc/passwd"
printf 'root:x:0:\nstevedore:x:65532:\nnogroup:x:65534:\n' > "$out/etc/group"
echo "base rootfs in $out: $(du -sh "$out" | cut -f1), packages: $(echo $pkgs | wc -w)" >&2
