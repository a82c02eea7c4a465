#!/usr/bin/env bash
# Counts the "one thing, several ways" seams of issue 12 in src/, each place as file:line, so counts
# before and after a change can be compared: `hack/count-seams.sh [TREE]` (default: this work tree).
# Patterns, not a parser: read the listed lines when a count moves. Comment lines are not counted.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

# count TITLE PATTERN [PATH...]: matches of the extended regex PATTERN in the .ts files under PATHs (default src).
count() {
  local title=$1 pattern=$2; shift 2
  local hits
  hits=$(grep -rnE --include='*.ts' "$pattern" "${@:-src}" 2>/dev/null | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|//)' || true)
  printf '%-56s %3d\n' "$title" "$(printf '%s' "$hits" | grep -c . || true)"
  if [ -n "$hits" ]; then printf '%s\n' "$hits" | cut -c1-140 | sed 's/^/    /'; fi
}

count 'retry loops (a loop over attempts)' 'for \(let (attempt|tries|retry)\b|while \(.*\b(attempt|tries)\b *<'
count 'backoff formulas' 'function (backoffDelay|exponentialDelay|retryDelay|restartDelayMs)\(|[Dd]elay \* 2\b|[Dd]elay \*= 2'
count 'Go duration parsers (regexes over the units)' '\(ns\|us\|µs' src --exclude=schema.ts
count 'tar writers (tar-stream pack)' '(tar\(\)|tarStream\(\)|tar)\.pack\(\)|tarPack\(\)'
count 'tar readers (tar-stream extract)' '(tar\(\)|tarStream\(\)|tar)\.extract\(\)|tarExtract\(\)'
count 'compression sniffers' 'function sniff[A-Za-z]*Compression\('
count 'compression magic numbers written out (gzip 1f 8b)' '0x1f\b.*0x8b'
count 'sleeps written inline or defined' 'function sleep\(|const sleep = |new Promise(<void>)?\(\(r(esolve)?\) => setTimeout\(r(esolve)?, '
count 'Kubernetes timestamp trims (toISOString().replace)' 'toISOString\(\)\)?\.replace\('
count 'status-patch call sites: ImageMirror' 'await [^;]*patchStatus\(' src/controllers/imagemirror.ts src/controllers/imagemirror-status.ts
count 'status-patch call sites: ImageBuild' 'await [^;]*patchStatus\(' src/controllers/imagebuild.ts src/controllers/imagebuild-result.ts
count 'status-patch call sites: ContainerRun controller' 'await [^;]*patchStatus\(' src/controllers/containerrun.ts src/controllers/containerrun-nodes.ts
count 'status-patch call sites: node agent' 'await [^;]*patchStatus\(' src/agent
