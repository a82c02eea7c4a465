# Shared by the benchmark scripts: a work dir, real registries on loopback, timing and medians.
# Source it after `cd` to the repository root.
work=$(mktemp -d -t stevedore-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
export REGISTRY_AUTH_FILE="$work/auth.json"; echo '{"auths":{}}' > "$REGISTRY_AUTH_FILE"

start_registry() { # name var: starts a registry, stores host:port in var (no subshell: it must outlive this call)
  local name=$1 port
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  mkdir -p "$work/$name"
  printf 'version: 0.1\nlog: { level: error }\nstorage:\n  filesystem: { rootdirectory: %s }\n  delete: { enabled: true }\nhttp: { addr: 127.0.0.1:%s }\n' "$work/$name" "$port" > "$work/$name.yml"
  # distribution reads every REGISTRY_* variable as a config override: keep ours away from it.
  env -u REGISTRY_AUTH_FILE docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
  pids+=($!)
  local ok=""
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { ok=1; break; }; sleep 0.05; done
  [ -n "$ok" ] || { echo "registry $name did not start:" >&2; cat "$work/$name.log" >&2; exit 1; }
  printf -v "$2" '127.0.0.1:%s' "$port"
}

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
timeit() { local t0 t1; t0=$(now); "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; return 1; }; t1=$(now); echo "$t1 - $t0" | bc -l; }
medianof() { tr ' ' '\n' <<<"$1" | grep . | median; }
seed() { node --import ./hack/lib/ts-resolve.ts hack/bench/seed.ts "$@"; }
