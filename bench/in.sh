#!/usr/bin/env bash
# Benchmark of `in` on a large generated image (issue 3): in one run, against the same local
# registry and image,
#   rootfs: our `in` (format rootfs)      vs  skopeo copy docker:// oci: + umoci unpack
#   save:   our `in` (format oci: a docker-save image.tar)  vs  skopeo copy docker:// docker-archive:
#   floor:  a parallel `curl | pigz -d | tar -x` per layer (no ordering, no whiteouts, no checks)
# and our peak RSS. Prints medians (of --runs, default 3) and the ratios.
#
# The image: layers of real files from /usr (share, bin, include, lib/x86_64-linux-gnu/perl...)
# and incompressible random data, about --size-mb MB in all (default 1100), built as an OCI
# layout with tar + pigz and pushed with skopeo.
#
# Usage: bench/in.sh [--runs N] [--quick] [--no-build] [--out FILE]
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
    *) printf 'usage: bench/in.sh [--runs N] [--quick] [--no-build] [--out FILE]\n' >&2; exit 2 ;;
  esac
done

ir_require docker-registry skopeo umoci jq curl pigz tar sha256sum bc
((build)) && ir_build_release
in_bin="$(ir_bin_dir)/in"
ir_init
ir_start_registry

# --- the image -------------------------------------------------------------------------
layout="$IR_TMP/layout"
ir_log "building the benchmark image"
ir_make_big_image "$layout" 1 "$random_mb" "$quick"
manifest="$IR_BIG_MANIFEST"
mdigest="$IR_BIG_DIGEST"
repository="$IR_REGISTRY/bench/big"
ir_push "$layout" 1 "$repository:1"
rm -rf "$layout"
digest="sha256:$mdigest"
total_mb=$(du -sm "$IR_REGISTRY_DIR/storage" | cut -f1)
ir_log "pushed $repository:1 ($digest), registry storage ${total_mb} MB"

# --- the contenders ----------------------------------------------------------------------
policy="$IR_TMP/policy.json"
work="$IR_TMP/work"
request() {
  jq -cn --arg r "$repository" --arg d "$digest" --argjson p "$1" \
    '{source: {repository: $r, tag: "1"}, version: {digest: $d}, params: $p}'
}
ours_rootfs() { request '{}' | "$in_bin" "$work/dest" >/dev/null 2>"$IR_TMP/in.log"; }
ours_save() { request '{"format":"oci"}' | "$in_bin" "$work/dest" >/dev/null 2>"$IR_TMP/in.log"; }
skopeo_umoci() {
  skopeo --policy "$policy" copy --quiet --src-tls-verify=false "docker://$repository:1" "oci:$work/oci:x" &&
    umoci unpack --image "$work/oci:x" "$work/bundle" >/dev/null
}
skopeo_save() {
  skopeo --policy "$policy" copy --quiet --src-tls-verify=false "docker://$repository:1" \
    "docker-archive:$work/image.tar:bench/big:1"
}
floor() {
  # The layers' tars name `usr/...` without a `usr/` entry of their own: made here, so that
  # parallel extractions do not race to create it (tar: "Cannot mkdir").
  mkdir -p "$work/floor/usr"
  local d pid
  local -a pids=()
  for d in $(jq -r '.layers[].digest' <<<"$manifest"); do
    curl -sf "http://$IR_REGISTRY/v2/bench/big/blobs/$d" | pigz -d | tar -x -C "$work/floor" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done # not a bare `wait`: the registry is a job too
}

# Runs every contender $runs times, interleaved and in a rotating order, each in a fresh
# directory. Outputs are NOT deleted between runs, only at the end: on this machine's disk
# (ext4 without a journal) the kernel skips recently deleted inodes when it allocates new
# ones (`recently_deleted()`, up to 6 minutes after the delete), and with tens of thousands
# of them that scan costs more than the work: `perf` showed 45% of all CPU in it, and the
# same get took 36 s (34 s of it in the kernel) 65 s after deleting the previous tree, but
# 7 s beside it. Deleting between runs made each time depend on who ran just before.
# When the disk has too little room to keep every run, runs delete as they go, and say so.
contenders=(floor ours_rootfs skopeo_umoci ours_save skopeo_save)
declare -A times median
keep_runs=1
need_mb=$((runs * ${#contenders[@]} * total_mb * 3))
free_mb=$(df -Pm "$IR_TMP" | awk 'NR == 2 {print $4}')
if ((free_mb < need_mb + 2048)); then
  keep_runs=0
  ir_log "only ${free_mb} MB free (keeping every run needs ${need_mb} MB): deleting between runs, times will vary more"
fi
run_count=0
run_one() { # run_one NAME
  local start t
  if ((keep_runs)); then
    run_count=$((run_count + 1))
    work="$IR_TMP/runs/$run_count"
  else
    rm -rf "$work"
  fi
  mkdir -p "$work"
  sync
  sleep 1
  start=$(date +%s.%N)
  "$1"
  t=$(echo "$(date +%s.%N) - $start" | bc)
  times[$1]="${times[$1]:-} $t"
}
for ((i = 0; i < runs; i++)); do
  n=${#contenders[@]}
  for ((k = 0; k < n; k++)); do
    run_one "${contenders[$(((k + i) % n))]}"
  done
done
for name in "${contenders[@]}"; do
  # shellcheck disable=SC2086 # word splitting of the list of times is intended
  median[$name]=$(printf '%s\n' ${times[$name]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  ir_log "$name: runs${times[$name]} s, median ${median[$name]} s"
done

# Peak RSS of our rootfs get, measured on its own run.
work="$IR_TMP/runs/rss"
mkdir -p "$work"
rss_kb=$(request '{}' | /usr/bin/time -f %M "$in_bin" "$work/dest" 2>&1 >/dev/null | tail -n 1)
rm -rf "$IR_TMP/runs"

ratio() { echo "scale=3; $1 / $2" | bc; }
summary=$(jq -n \
  --argjson size_mb "$total_mb" \
  --argjson floor "${median[floor]}" \
  --argjson ours_rootfs "${median[ours_rootfs]}" --argjson skopeo_umoci "${median[skopeo_umoci]}" \
  --argjson ours_save "${median[ours_save]}" --argjson skopeo_save "${median[skopeo_save]}" \
  --argjson rss_mb "$((rss_kb / 1024))" \
  --argjson r1 "$(ratio "${median[ours_rootfs]}" "${median[skopeo_umoci]}")" \
  --argjson r2 "$(ratio "${median[ours_rootfs]}" "${median[floor]}")" \
  --argjson r3 "$(ratio "${median[ours_save]}" "${median[skopeo_save]}")" \
  '{image_mb_compressed: $size_mb, seconds: {floor: $floor, ours_rootfs: $ours_rootfs,
    skopeo_umoci: $skopeo_umoci, ours_save: $ours_save, skopeo_save: $skopeo_save},
    ratios: {rootfs_vs_skopeo_umoci: $r1, rootfs_vs_floor: $r2, save_vs_skopeo: $r3},
    peak_rss_mb: $rss_mb}')
printf '%s\n' "$summary"
if [[ -n "$out" ]]; then printf '%s\n' "$summary" >"$out"; fi
