#!/usr/bin/env bash
# Benchmark of `out` (issue 4): push a large docker-save tarball to an EMPTY local registry,
# ours (`out` with load_file) vs `skopeo copy docker-archive: docker://`, in one run; then
# a re-push of the same image by ours (every blob already there). Two tarballs are used:
#   saved:  what our `in` writes with `save: true` (layers kept gzip-compressed)
#   docker: what `docker save` writes (layers uncompressed; made with skopeo): both tools
#           must compress ~1.4 GB here.
# Prints medians (of --runs, default 3), ratios ours/skopeo and the re-push time, with the
# CPU seconds (user + sys) of each, which mean more than wall time on a busy machine. With
# --params JSON, those params are added to ours (e.g. '{"compression":"zstd"}'); --only
# saved|docker runs one of the two tarballs; ours' stderr summary lines are kept.
#
# Usage: bench/push.sh [--runs N] [--quick] [--no-build] [--out FILE] [--params JSON]
#                      [--only saved|docker]
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=3
random_mb=300
quick=0
build=1
out=""
extra='{}'
only=""
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --quick) quick=1; runs=1; random_mb=20; shift ;;
    --no-build) build=0; shift ;;
    --out) out="$2"; shift 2 ;;
    --params) extra="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) printf 'usage: bench/push.sh [--runs N] [--quick] [--no-build] [--out FILE] [--params JSON] [--only saved|docker]\n' >&2; exit 2 ;;
  esac
done

ir_require docker-registry skopeo jq curl pigz tar sha256sum bc
((build)) && ir_build_release
bin="$(ir_bin_dir)"
ir_init
policy="$IR_TMP/policy.json"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$policy"

ir_log "building the benchmark image"
ir_make_big_image "$IR_TMP/layout" 1 "$random_mb" "$quick"
ir_start_registry
source_repo="$IR_REGISTRY/bench/big"
ir_push "$IR_TMP/layout" 1 "$source_repo:1"
# The `in` benchmark's tarball: our `in` with save: true writes <dest>/image.
jq -cn --arg r "$source_repo" --arg d "sha256:$IR_BIG_DIGEST" \
  '{source: {repository: $r, tag: "1"}, version: {digest: $d}, params: {format: "oci"}}' |
  "$bin/in" "$IR_TMP/get" >/dev/null 2>&1
mv "$IR_TMP/get/image.tar" "$IR_TMP/saved.tar"
rm -rf "$IR_TMP/get"
skopeo --policy "$policy" copy --quiet "oci:$IR_TMP/layout:1" "docker-archive:$IR_TMP/docker.tar:bench/big:1"
rm -rf "$IR_TMP/layout"
ir_stop_registry
ir_log "tarballs: saved $(($(stat -c %s "$IR_TMP/saved.tar") / 1000000)) MB, docker $(($(stat -c %s "$IR_TMP/docker.tar") / 1000000)) MB"

ours() { # ours TARBALL
  jq -cn --arg r "$IR_REGISTRY/bench/pushed" --arg f "$1" --argjson extra "$extra" \
    '{source: {repository: $r, tag: "1"}, params: ({load_file: $f} + $extra)}' |
    "$bin/out" "$IR_TMP" >/dev/null 2>"$IR_TMP/out.log"
  grep -E '^(blobs|pushed|compress|re-push)' "$IR_TMP/out.log" >&2 || true
}
theirs() { # theirs TARBALL
  skopeo --policy "$policy" copy --quiet --dest-tls-verify=false "docker-archive:$IR_TMP/$1" \
    "docker://$IR_REGISTRY/bench/pushed:1"
}
child_cpu() { # the CPU seconds (user + sys) of this shell's finished children so far
  times >"$IR_TMP/times" # not in $(...): a subshell has no children of its own yet
  awk 'NR == 2 {
    n = split($1 " " $2, t, " "); s = 0
    for (i = 1; i <= n; i++) { split(t[i], p, "m"); s += p[1] * 60 + p[2] }
    printf "%.2f\n", s }' "$IR_TMP/times" >"$IR_TMP/cpu"
}
seconds() { # seconds COMMAND...: runs it, prints the wall time; logs its CPU time
  local start cpu
  start=$(date +%s.%N)
  child_cpu
  cpu=$(<"$IR_TMP/cpu")
  "$@"
  child_cpu
  printf '    cpu %s s: %s\n' "$(echo "$(<"$IR_TMP/cpu") - $cpu" | bc)" "$*" >&2
  echo "$(date +%s.%N) - $start" | bc
}
layers_mb() { # the compressed size of the pushed image's layers, in MB
  skopeo inspect --raw --tls-verify=false "docker://$IR_REGISTRY/bench/pushed:1" |
    jq '[.layers[].size] | add / 1000000 | floor'
}
# Each timed push starts with no registry data of an earlier run left in the page cache or
# waiting to be written back (`sync` before it, the last registry's storage removed): else
# the writeback and reclaim of gigabytes of earlier pushes land in whichever tool runs next.
fresh_registry() {
  ir_stop_registry
  rm -rf "$IR_REGISTRY_DIR"
  ir_start_registry
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

ratio() { echo "scale=3; $1 / $2" | bc; }
summary='{"seconds": {}, "ratios": {}}'
declare -a tarballs=(saved.tar docker.tar)
[[ -n "$only" ]] && tarballs=("$only.tar")
for tarball in "${tarballs[@]}"; do
  declare -a t_ours=() t_theirs=() t_repush=()
  for ((i = 0; i < runs; i++)); do
    ir_start_registry
    sync
    t_ours+=("$(seconds ours "$tarball")")
    ir_log "ours: layers $(layers_mb) MB"
    t_repush+=("$(seconds ours "$tarball")")
    fresh_registry
    sync
    t_theirs+=("$(seconds theirs "$tarball")")
    ir_log "skopeo: layers $(layers_mb) MB"
    ir_stop_registry
    rm -rf "$IR_REGISTRY_DIR"
  done
  name="${tarball%.tar}"
  o=$(median "${t_ours[@]}") t=$(median "${t_theirs[@]}") r=$(median "${t_repush[@]}")
  ir_log "$name: ours ${t_ours[*]} s; skopeo ${t_theirs[*]} s; re-push ${t_repush[*]} s"
  summary=$(jq --arg n "$name" --argjson o "$o" --argjson t "$t" --argjson r "$r" \
    --argjson q "$(ratio "$o" "$t")" \
    '.seconds[$n] = {ours: $o, skopeo: $t, ours_repush: $r} | .ratios[$n + "_push_vs_skopeo"] = $q' \
    <<<"$summary")
  unset t_ours t_theirs t_repush
done

printf '%s\n' "$summary"
if [[ -n "$out" ]]; then printf '%s\n' "$summary" >"$out"; fi
