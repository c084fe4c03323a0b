#!/usr/bin/env bash
# Benchmark of `out` (issue 4): push a large docker-save tarball to an EMPTY local registry,
# ours (`out` with load_file) vs `skopeo copy docker-archive: docker://`, in one run; then
# a re-push of the same image by ours (every blob already there). Two tarballs are used:
#   saved:  what our `in` writes with `save: true` (layers kept gzip-compressed)
#   docker: what `docker save` writes (layers uncompressed; made with skopeo): both tools
#           must compress ~1.4 GB here.
# Prints medians (of --runs, default 3), ratios ours/skopeo and the re-push time.
#
# Usage: bench/push.sh [--runs N] [--quick] [--no-build] [--out FILE]
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=3
random_mb=300
quick=0
build=1
out=""
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --quick) quick=1; runs=1; random_mb=20; shift ;;
    --no-build) build=0; shift ;;
    --out) out="$2"; shift 2 ;;
    *) printf 'usage: bench/push.sh [--runs N] [--quick] [--no-build] [--out FILE]\n' >&2; exit 2 ;;
  esac
done

ir_require docker-registry skopeo jq curl pigz tar sha256sum bc
((build)) && ir_build_release
bin="$IR_ROOT/target/release"
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
  jq -cn --arg r "$IR_REGISTRY/bench/pushed" --arg f "$1" \
    '{source: {repository: $r, tag: "1"}, params: {load_file: $f}}' |
    "$bin/out" "$IR_TMP" >/dev/null 2>"$IR_TMP/out.log"
}
theirs() { # theirs TARBALL
  skopeo --policy "$policy" copy --quiet --dest-tls-verify=false "docker-archive:$IR_TMP/$1" \
    "docker://$IR_REGISTRY/bench/pushed:1"
}
seconds() { # seconds COMMAND...: runs it, prints the wall time
  local start
  start=$(date +%s.%N)
  "$@"
  echo "$(date +%s.%N) - $start" | bc
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A result
for tarball in saved.tar docker.tar; do
  declare -a t_ours=() t_theirs=() t_repush=()
  for ((i = 0; i < runs; i++)); do
    ir_start_registry
    t_ours+=("$(seconds ours "$tarball")")
    t_repush+=("$(seconds ours "$tarball")")
    ir_stop_registry
    ir_start_registry
    t_theirs+=("$(seconds theirs "$tarball")")
    ir_stop_registry
  done
  name="${tarball%.tar}"
  result[${name}_ours]=$(median "${t_ours[@]}")
  result[${name}_skopeo]=$(median "${t_theirs[@]}")
  result[${name}_repush]=$(median "${t_repush[@]}")
  ir_log "$name: ours ${t_ours[*]} s; skopeo ${t_theirs[*]} s; re-push ${t_repush[*]} s"
  unset t_ours t_theirs t_repush
done

ratio() { echo "scale=3; $1 / $2" | bc; }
summary=$(jq -n \
  --argjson so "${result[saved_ours]}" --argjson ss "${result[saved_skopeo]}" --argjson sr "${result[saved_repush]}" \
  --argjson dk "${result[docker_ours]}" --argjson ds "${result[docker_skopeo]}" --argjson dr "${result[docker_repush]}" \
  --argjson rs "$(ratio "${result[saved_ours]}" "${result[saved_skopeo]}")" \
  --argjson rd "$(ratio "${result[docker_ours]}" "${result[docker_skopeo]}")" \
  '{seconds: {saved: {ours: $so, skopeo: $ss, ours_repush: $sr}, docker: {ours: $dk, skopeo: $ds, ours_repush: $dr}},
    ratios: {saved_push_vs_skopeo: $rs, docker_push_vs_skopeo: $rd}}')
printf '%s\n' "$summary"
if [[ -n "$out" ]]; then printf '%s\n' "$summary" >"$out"; fi
