#!/usr/bin/env bash
# Times our `check` against `skopeo inspect --raw` on the same local registry.
#
# Starts docker-registry on 127.0.0.1:<free port> (plain HTTP), pushes the demo
# image (bench/lib.sh), checks once that both tools agree on the digest, then
# runs both under hyperfine in one session and prints the two medians and the
# ratio ours/skopeo. Nothing is written into the repository: the summary goes to
# a temp file (path printed) unless --out FILE is given.
#
# Usage: bench/check.sh [--quick] [--runs N] [--warmup N] [--out FILE] [--no-build]
#   --quick      5 runs, no warmup (CI smoke test)
#   --runs N     runs per command (default 30)
#   --warmup N   warmup runs per command (default 3)
#   --out FILE   write the summary JSON (with hyperfine's full export) to FILE
#   --no-build   use target/release/check as it is
# IR_CHECK_BIN=PATH times another check executable instead (implies --no-build).
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat >&2 <<'USAGE'
usage: bench/check.sh [--quick] [--runs N] [--warmup N] [--out FILE] [--no-build]
  --quick      5 runs, no warmup (CI smoke test)
  --runs N     runs per command (default 30)
  --warmup N   warmup runs per command (default 3)
  --out FILE   write the summary JSON (with hyperfine's full export) to FILE
  --no-build   use target/release/check as it is (or $IR_CHECK_BIN)
USAGE
  exit 2
}

runs=30
warmup=3
out=""
build=1
while (($#)); do
  case "$1" in
    --quick) runs=5; warmup=0 ;;
    --runs) [[ $# -ge 2 ]] || usage; runs="$2"; shift ;;
    --warmup) [[ $# -ge 2 ]] || usage; warmup="$2"; shift ;;
    --out) [[ $# -ge 2 ]] || usage; out="$2"; shift ;;
    --no-build) build=0 ;;
    -h | --help) usage ;;
    *) printf 'bench/check.sh: unknown argument %q\n' "$1" >&2; usage ;;
  esac
  shift
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || ir_die "--runs wants a positive integer, got '$runs'"
[[ "$warmup" =~ ^[0-9]+$ ]] || ir_die "--warmup wants a non-negative integer, got '$warmup'"

ir_require docker-registry skopeo umoci hyperfine jq curl
check_bin="$(ir_check_bin)"
if ((build)); then
  ir_build_release
fi
[[ -x "$check_bin" ]] || ir_die "$check_bin missing: run cargo build --release"

ir_init
ir_start_registry
ir_log "making the demo image (umoci) and pushing it (skopeo)"
ir_make_image "$IR_TMP/oci" 1.0
repository="$IR_REGISTRY/demo/busybox"
ir_push "$IR_TMP/oci" 1.0 "$repository:1.0"

request="$IR_TMP/check-request.json"
ir_check_request "$repository" 1.0 >"$request"

# One checked run of each before timing: both must succeed and agree.
expected="$(ir_manifest_digest "$repository:1.0")"
if ! response="$("$check_bin" <"$request" 2>"$IR_TMP/check.stderr")"; then
  cat "$IR_TMP/check.stderr" >&2
  ir_die "$check_bin failed on $(cat "$request")"
fi
got="$(jq -r 'if type == "array" and length > 0 then .[-1].digest // empty else empty end' \
  <<<"$response" 2>/dev/null || true)"
[[ "$got" == "$expected" ]] ||
  ir_die "check answered '$response'; expected the last version's digest to be $expected (skopeo)"
ir_log "check and skopeo agree: $expected"

export_json="$IR_TMP/hyperfine.json"
q_check="$(printf '%q' "$check_bin") < $(printf '%q' "$request")"
q_skopeo="skopeo inspect --raw --tls-verify=false $(printf '%q' "docker://$repository:1.0")"
ir_log "hyperfine: $runs runs, $warmup warmup runs each"
hyperfine --warmup "$warmup" --runs "$runs" --export-json "$export_json" \
  --command-name check --command-name skopeo \
  "$q_check" "$q_skopeo" >&2 ||
  ir_die "hyperfine failed: a timed command exited non-zero (see above)"

summary="$(jq --argjson runs "$runs" --argjson warmup "$warmup" --arg digest "$expected" '
  (.results[] | select(.command == "check") | .median * 1000) as $ours |
  (.results[] | select(.command == "skopeo") | .median * 1000) as $skopeo |
  {benchmark: "check vs skopeo inspect --raw, local registry over plain HTTP",
   runs: $runs, warmup: $warmup, digest: $digest,
   check_median_ms: $ours, skopeo_median_ms: $skopeo,
   ratio_check_over_skopeo: ($ours / $skopeo),
   hyperfine: .}' "$export_json")"

if [[ -z "$out" ]]; then
  out="$(mktemp -t image-resource-bench-check.XXXXXX.json)"
fi
printf '%s\n' "$summary" >"$out"

jq -r '
  "check (ours)          median \(.check_median_ms * 100 | round / 100) ms",
  "skopeo inspect --raw  median \(.skopeo_median_ms * 100 | round / 100) ms",
  "ratio ours/skopeo     \(.ratio_check_over_skopeo * 1000 | round / 1000)",
  "(\(.runs) runs, \(.warmup) warmup each)"' <<<"$summary"
ir_log "summary written to $out"
