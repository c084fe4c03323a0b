#!/usr/bin/env bash
# The request budget of `check` without a tag (R's semver listing): a repository with
# 1,000 semver tags, each on its own image, on a local registry.
#
# Starts docker-registry on 127.0.0.1:<free port> with its access log on, pushes the demo
# image once (bench/lib.sh), then PUTs 1,000 manifests that differ only by an annotation,
# tagged 1.0.0 ... 1.9.99 (plus the one pushed image as 0.0.1). Then:
#   - times `check` with no version (every tag listed, every digest resolved): median of
#     --runs runs, and checks that it emits 1,001 versions;
#   - runs `check` with the cursor at the newest tag once and counts the HTTP requests the
#     registry served for it (from the access log), and times it too;
#   - runs `skopeo list-tags` once for scale (one listing, no digests).
# Prints a summary and writes it as JSON to a temp file (or --out FILE).
#
# Usage: bench/tags.sh [--quick] [--runs N] [--tags N] [--out FILE] [--no-build]
#   --quick      3 runs, 200 tags (CI smoke test)
#   --runs N     timed runs of each check (default 5)
#   --tags N     tags to make (default 1000, at most 10000)
#   --out FILE   write the summary JSON to FILE
#   --no-build   use target/release/check as it is
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '/^# Usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

runs=5
tags=1000
out=""
build=1
while (($#)); do
  case "$1" in
    --quick) runs=3; tags=200 ;;
    --runs) [[ $# -ge 2 ]] || usage; runs="$2"; shift ;;
    --tags) [[ $# -ge 2 ]] || usage; tags="$2"; shift ;;
    --out) [[ $# -ge 2 ]] || usage; out="$2"; shift ;;
    --no-build) build=0 ;;
    -h | --help) usage ;;
    *) printf 'bench/tags.sh: unknown argument %q\n' "$1" >&2; usage ;;
  esac
  shift
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || ir_die "--runs wants a positive integer, got '$runs'"
if ! [[ "$tags" =~ ^[1-9][0-9]*$ ]] || ((tags > 10000)); then
  ir_die "--tags wants an integer from 1 to 10000, got '$tags'"
fi

ir_require docker-registry skopeo umoci jq curl
check_bin="$(ir_check_bin)"
if ((build)); then
  ir_build_release
fi
[[ -x "$check_bin" ]] || ir_die "$check_bin missing: run cargo build --release"

now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# Requests the registry served so far (access log lines for /v2/).
served() { grep -cE '"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/' "$IR_REGISTRY_DIR/registry.log" || true; }

ir_init
IR_ACCESSLOG=1 ir_start_registry
ir_log "making the demo image (umoci) and pushing it (skopeo)"
ir_make_image "$IR_TMP/oci" 0.0.1
repository="$IR_REGISTRY/bench/tags"
ir_push "$IR_TMP/oci" 0.0.1 "$repository:0.0.1"

oci_manifest="application/vnd.oci.image.manifest.v1+json"
raw="$(curl --noproxy '*' -sf -H "Accept: $oci_manifest" \
  "http://$IR_REGISTRY/v2/bench/tags/manifests/0.0.1")" ||
  ir_die "could not read the pushed manifest back"
[[ "$raw" == "{"* ]] || ir_die "the pushed manifest is not a JSON object: ${raw:0:80}"

ir_log "putting $tags manifests (one annotation apart), tagged 1.x.y"
config="$IR_TMP/curl-put.cfg"
: >"$config"
mkdir -p "$IR_TMP/manifests"
newest=""
for ((i = 0; i < tags; i++)); do
  tag="1.$((i / 100)).$((i % 100))"
  file="$IR_TMP/manifests/$tag.json"
  ((i == 0)) || printf 'next\n' >>"$config"
  printf '{"annotations":{"bench.index":"%s"},%s' "$i" "${raw#\{}" >"$file"
  printf 'url = "http://%s/v2/bench/tags/manifests/%s"\nrequest = "PUT"\nheader = "Content-Type: %s"\ndata-binary = "@%s"\noutput = "/dev/null"\nfail\n' \
    "$IR_REGISTRY" "$tag" "$oci_manifest" "$file" >>"$config"
  newest="$tag"
done
started="$(now)"
curl --noproxy '*' -sS -K "$config" ||
  ir_die "putting the manifests failed"
ir_log "put $tags manifests in $(seconds "$started" "$(now)") s"
newest_digest="sha256:$(sha256sum <"$IR_TMP/manifests/$newest.json" | cut -d' ' -f1)"

request="$(jq -cn --arg r "$repository" '{source: {repository: $r}}')"
cursor="$(jq -cn --arg r "$repository" --arg t "$newest" --arg d "$newest_digest" \
  '{source: {repository: $r}, version: {tag: $t, digest: $d}}')"

# One checked run first: every tag is a version, the newest last.
response="$("$check_bin" <<<"$request" 2>"$IR_TMP/check.stderr")" || {
  cat "$IR_TMP/check.stderr" >&2
  ir_die "check failed"
}
count="$(jq length <<<"$response")"
last="$(jq -r '.[-1] | "\(.tag) \(.digest)"' <<<"$response")"
((count == tags + 1)) || ir_die "check emitted $count versions, expected $((tags + 1))"
[[ "$last" == "$newest $newest_digest" ]] || ir_die "the last version is $last, expected $newest $newest_digest"

time_runs() { # time_runs JSON: the median wall time of $runs runs of check, in seconds
  local -a times=()
  local i t0
  for ((i = 0; i < runs; i++)); do
    t0="$(now)"
    "$check_bin" <<<"$1" >/dev/null 2>&1 || ir_die "check failed on $1"
    times+=("$(seconds "$t0" "$(now)")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

before="$(served)"
"$check_bin" <<<"$request" >/dev/null 2>&1
first_requests=$(($(served) - before))
before="$(served)"
cursor_response="$("$check_bin" <<<"$cursor" 2>"$IR_TMP/cursor.stderr")"
cursor_requests=$(($(served) - before))
[[ "$(jq -c 'map(.tag)' <<<"$cursor_response")" == "[\"$newest\"]" ]] ||
  ir_die "check with the cursor at $newest answered $cursor_response"

ir_log "timing: $runs runs of each"
first_s="$(time_runs "$request")"
cursor_s="$(time_runs "$cursor")"
t0="$(now)"
skopeo list-tags --tls-verify=false "docker://$repository" >/dev/null
skopeo_s="$(seconds "$t0" "$(now)")"

summary="$(jq -n --argjson tags "$tags" --argjson runs "$runs" \
  --argjson first_s "$first_s" --argjson first_requests "$first_requests" \
  --argjson cursor_s "$cursor_s" --argjson cursor_requests "$cursor_requests" \
  --argjson skopeo_s "$skopeo_s" \
  '{benchmark: "check without tag over a repository of semver tags, local registry",
    tags: ($tags + 1), runs: $runs,
    first_check_median_s: $first_s, first_check_requests: $first_requests,
    cursor_check_median_s: $cursor_s, cursor_check_requests: $cursor_requests,
    skopeo_list_tags_s: $skopeo_s}')"
if [[ -z "$out" ]]; then
  out="$(mktemp -t image-resource-bench-tags.XXXXXX.json)"
fi
printf '%s\n' "$summary" >"$out"
jq -r '
  "tags in the repository          \(.tags)",
  "first check (no cursor)         median \(.first_check_median_s) s, \(.first_check_requests) requests",
  "check, cursor at the newest tag median \(.cursor_check_median_s) s, \(.cursor_check_requests) requests",
  "skopeo list-tags (for scale)    \(.skopeo_list_tags_s) s",
  "(\(.runs) runs each)"' <<<"$summary"
ir_log "summary written to $out"
