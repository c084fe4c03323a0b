#!/usr/bin/env bash
# Benchmark of `out` with params.build (issue 5): build + push of a small multi-step
# Dockerfile by ours vs. `buildah bud` + `buildah push` done by hand, in one run.
# Target: ours <= 1.1x manual. And (issue 12) a cached rebuild: ours with `cache: true` on a
# 6-step Dockerfile with an ARG, put twice; target: the second <= 0.3x the first.
#
# buildah is the one the resource image ships, Debian trixie's 1.39, run through ci/buildah
# (from the root ci/setup prepares) unless IMAGE_RESOURCE_BUILDAH names another; both
# contenders use it, the manual one with the same --ulimit values ours passes.
#
#   ours:    `out` with {"source": {"repository": REG/bench/built, "tag": "1"},
#            "params": {"build": "ctx"}}: buildah bud into a private vfs storage in the put's
#            scratch directory, `buildah push ID oci:DIR:latest`, our pusher sends that
#            layout, the workspace is removed. All of it is timed.
#   manual:  `buildah bud --isolation chroot --layers --format oci -t REG/bench/manual:1 ctx`
#            then `buildah push --tls-verify=false REG/bench/manual:1 docker://...`, both with
#            --root/--runroot in a fresh directory and --storage-driver vfs. Removing that
#            storage afterwards is NOT timed (it is reported as manual_cleanup).
#
# Both start from empty storage (a cold build: the base is pulled, every step runs). Every run
# of either gets a fresh registry (docker-registry on 127.0.0.1, plain HTTP) holding only the
# base image (bench/base:1, busybox-static made with umoci), so no run finds blobs that an
# earlier run pushed. What each does with the base layer (in bench/base, not in the target
# repository):
#   ours:    HEADs each blob in the target repository and uploads what is missing; a layer
#            from a local layout is never mounted. buildah's oci: push recompresses the base
#            layer, so its digest differs from the one in bench/base and it is uploaded as a
#            new blob.
#   manual:  buildah (containers/image) knows from its pull where the base layer's
#            compressed blob is (the blob-info cache), and mounts it from bench/base instead
#            of compressing and uploading it.
# The script prints, per run, the pushed manifest's layer count and how many of the base's
# layer blobs it reuses (same digest as in bench/base) rather than carrying new copies.
#
# The manual buildah runs with a private HOME, TMPDIR, XDG dirs, registries.conf (the
# loopback registry insecure, no search registries), storage.conf, containers.conf (with the
# network config dir, where buildah puts lock files, as ours does) and an empty auth file.
# One thing neither can keep private: as root, containers/image's blob-info cache
# (/var/lib/containers/cache/) is machine-wide and buildah has
# no flag to move it; both contenders use it. Fresh registries (a new port each run) keep its
# old entries from pointing at blobs either contender could reuse.
#
# Ours runs with a `buildah` shim first on PATH that records when each buildah call starts
# and ends (one bash start, a few ms, per call), so its time splits into setup (up to the
# first buildah call), bud, the push into the OCI layout, and after_buildah (removing the
# workspace, reading and checking the layout, our upload, the manifest, removing the scratch
# directory); the upload's own time is the "blobs: ... ; N s)" line of its stderr.
#
# Prints medians (of --runs, default 5; contenders interleaved in a rotating order) and the
# ratio ours/manual as JSON; --out FILE also writes it there.
#
# Usage: bench/build.sh [--runs N] [--quick] [--no-build] [--out FILE] [--base-mb N]
#   --quick      1 run of each (CI smoke test)
#   --no-build   use target/release/out as it is
#   --base-mb N  add a layer of N MB (half random, half text) to the base image (default 0:
#                busybox only, about 1 MB): what the base layers cost each contender
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  printf 'usage: bench/build.sh [--runs N] [--quick] [--no-build] [--out FILE] [--base-mb N]\n' >&2
  exit 2
}

runs=5
build=1
out=""
base_mb=0
while (($#)); do
  case "$1" in
    --runs) [[ $# -ge 2 ]] || usage; runs="$2"; shift 2 ;;
    --quick) runs=1; shift ;;
    --no-build) build=0; shift ;;
    --out) [[ $# -ge 2 ]] || usage; out="$2"; shift 2 ;;
    --base-mb) [[ $# -ge 2 ]] || usage; base_mb="$2"; shift 2 ;;
    *) usage ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || ir_die "--runs wants a positive integer, got '$runs'"
[[ "$base_mb" =~ ^[0-9]+$ ]] || ir_die "--base-mb wants a number of MB, got '$base_mb'"

ir_require docker-registry skopeo umoci jq curl sha256sum
((build)) && ir_build_release
out_bin="$(ir_bin_dir)/out"
[[ -x "$out_bin" ]] || ir_die "$out_bin missing: run cargo build --release"
# The buildah the resource image ships (trixie's 1.39), run by ci/buildah from the root that
# ci/setup prepares, unless IMAGE_RESOURCE_BUILDAH names another; both contenders use it.
real_buildah="${IMAGE_RESOURCE_BUILDAH:-$IR_ROOT/ci/buildah}"
buildah_version="$("$real_buildah" --version)" || ir_die "$real_buildah does not run: run ci/setup"
ir_log "$buildah_version"
ir_init

# --- the base image: busybox-static with the applets the RUN steps use --------------------
make_base() { # make_base LAYOUT TAG
  local layout="$1" tag="$2" root created applet
  root="$(mktemp -d "$IR_TMP/rootfs.XXXXXX")"
  created="$(date -u -d "@$IR_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
  chmod 1777 "$root/tmp"
  chmod 0700 "$root/root"
  cp "$(ir_busybox)" "$root/bin/busybox"
  chmod 0755 "$root/bin/busybox"
  for applet in sh cat echo env id ls mkdir head seq sed gzip wc sha256sum test '[' \
    printf rm cp sort find xargs tr true; do
    ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 0644 "$root"/etc/*
  find "$root" -exec touch -h -d "@$IR_EPOCH" {} +
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci insert --image "$layout:$tag" --history.created "$created" \
    --history.created_by "busybox-static, /etc, /tmp, /root" "$root" /
  if ((base_mb > 0)); then
    local extra="$IR_TMP/base-extra"
    mkdir -p "$extra"
    head -c $((base_mb * 500000)) /dev/urandom >"$extra/random.bin"
    seq 1 100000000 | head -c $((base_mb * 500000)) >"$extra/numbers.txt" || true
    umoci insert --image "$layout:$tag" --history.created "$created" \
      --history.created_by "$base_mb MB in /opt" "$extra" /opt
    rm -rf "$extra"
  fi
  umoci config --image "$layout:$tag" --no-history --created "$created" \
    --config.env PATH=/bin --config.cmd /bin/sh
  rm -rf "$root"
}
ir_log "making the base image (busybox-static, umoci; extra layer: $base_mb MB)"
make_base "$IR_TMP/base" 1

# --- the build context ------------------------------------------------------------------
work="$IR_TMP/work" # out's argv[1]; the context is work/ctx
ctx="$work/ctx"
mkdir -p "$ctx/etc" "$ctx/assets"
for name in app db cache; do
  seq 1 200 | sed "s/^/$name.setting./; s/$/ = on/" >"$ctx/etc/$name.conf"
done
head -c 1048576 /dev/urandom >"$ctx/assets/blob.bin"
seq 1 20000 >"$ctx/assets/numbers.txt"
printf 'image-resource build benchmark\n' >"$ctx/assets/README"

# The Dockerfile names the registry, whose port changes with every fresh registry.
write_dockerfile() {
  cat >"$ctx/Dockerfile" <<EOF
FROM $IR_REGISTRY/bench/base:1
ARG RANDOM_MB=2
ARG RECORDS=150000
ENV APP_HOME=/app LANG=C.UTF-8
LABEL org.opencontainers.image.title="image-resource build benchmark"
RUN mkdir -p /app/data /app/logs && i=0 && while [ "\$i" -lt "\$RANDOM_MB" ]; do \\
      head -c 1048576 /dev/urandom > "/app/data/random-\$i.bin"; i=\$((i + 1)); done
RUN seq 1 "\$RECORDS" | sed 's/^/record /' > /app/data/records.txt && \\
    gzip -9 -c /app/data/records.txt > /app/data/records.txt.gz && \\
    for i in \$(seq 1 50); do echo "log line \$i" > "/app/logs/\$i.log"; done
COPY etc/ /app/etc/
COPY assets/ /app/assets/
RUN find /app -type f | sort | xargs sha256sum > /app/MANIFEST && wc -l /app/MANIFEST
WORKDIR /app
CMD ["/bin/sh"]
EOF
  # The cached-rebuild benchmark's 6 steps: FROM, an ARG, three RUNs that do some work
  # (random data, text compressed with gzip -9, checksums) and a COPY.
  cat >"$ctx/Dockerfile.cache" <<EOF
FROM $IR_REGISTRY/bench/base:1
ARG RECORDS=400000
RUN mkdir -p /app/data && i=0 && while [ "\$i" -lt 8 ]; do \\
      head -c 1048576 /dev/urandom > "/app/data/random-\$i.bin"; i=\$((i + 1)); done
RUN seq 1 "\$RECORDS" | sed 's/^/record /' > /app/data/records.txt && \\
    gzip -9 -c /app/data/records.txt > /app/data/records.txt.gz && \\
    i=0 && while [ "\$i" -lt 20 ]; do gzip -9 -c /app/data/records.txt | wc -c > /dev/null; i=\$((i + 1)); done
COPY etc/ /app/etc/
RUN find /app -type f | sort | xargs sha256sum > /app/MANIFEST && wc -l /app/MANIFEST
EOF
}

# --- a fresh registry with the base, for every run ----------------------------------------
base_layers="[]" # the base's layer digests, as JSON
fresh_registry() {
  ir_stop_registry
  if [[ -n "$IR_REGISTRY_DIR" ]]; then rm -rf "$IR_REGISTRY_DIR"; fi
  ir_start_registry
  ir_push "$IR_TMP/base" 1 "$IR_REGISTRY/bench/base:1"
  base_layers="$(skopeo inspect --raw --tls-verify=false "docker://$IR_REGISTRY/bench/base:1" |
    jq -c '[.layers[].digest]')"
  write_dockerfile
  # The manual buildah's registries.conf: this registry over plain HTTP, no search list.
  printf 'unqualified-search-registries = []\n\n[[registry]]\nlocation = "%s"\ninsecure = true\n' \
    "$IR_REGISTRY" >"$manual_home/registries.conf"
}

since() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; } # since START END: seconds

# --- the contenders -------------------------------------------------------------------------
# ours: the shim records "SUBCOMMAND START END" for every buildah call.
shim="$IR_TMP/shim"
mkdir -p "$shim"
cat >"$shim/buildah" <<EOF
#!/usr/bin/env bash
start=\$EPOCHREALTIME
"$real_buildah" "\$@"
rc=\$?
sub="other"
for a in "\$@"; do
  case "\$a" in bud|build|push|pull|tag|rm|rmi|images|inspect) sub=\$a; break ;; esac
done
printf '%s %s %s\n' "\$sub" "\$start" "\$EPOCHREALTIME" >>"$IR_TMP/ours-calls"
exit \$rc
EOF
chmod +x "$shim/buildah"
ours_tmp="$IR_TMP/ours-tmp"
mkdir -p "$ours_tmp"
ours_request() {
  jq -cn --arg r "$IR_REGISTRY/bench/built" \
    '{source: {repository: $r, tag: "1"}, params: {build: "ctx"}}'
}
ours() {
  ours_request | IMAGE_RESOURCE_BUILDAH="$shim/buildah" TMPDIR="$ours_tmp" "$out_bin" "$work" \
    >/dev/null 2>"$IR_TMP/ours.log"
}

# manual: a private home for its configuration, a fresh storage directory per run.
manual_home="$IR_TMP/manual-home"
mkdir -p "$manual_home/home" "$manual_home/tmp"
printf '{"auths": {}}\n' >"$manual_home/auth.json"
printf '[storage]\ndriver = "vfs"\n' >"$manual_home/storage.conf"
# Network backends create their config dir and a lock file in it even with chroot isolation
# (/etc/containers/networks, /etc/cni/net.d by default): keep them in the private home too.
mkdir -p "$manual_home/network" "$manual_home/home/.config/containers"
printf '[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "%s"\n' "$manual_home/network" \
  >"$manual_home/containers.conf"
cp "$IR_ROOT/assets/policy.json" "$manual_home/home/.config/containers/policy.json"
# buildah 1.39 gives RUN steps 1048576 open files unless told otherwise, above the hard limit
# of many containers: the limits this script runs with, as ours passes them.
ulimits=(--ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit "nproc=$(ulimit -Su):$(ulimit -Hu)")
ulimits=("${ulimits[@]//unlimited/-1}")
manual_store="$IR_TMP/manual-storage"
manual_buildah() {
  env -u BUILDAH_FORMAT -u BUILDAH_ISOLATION -u BUILDAH_LAYERS -u STORAGE_DRIVER \
    -u STORAGE_OPTS -u DOCKER_CONFIG \
    HOME="$manual_home/home" XDG_CONFIG_HOME="$manual_home/home/.config" \
    XDG_DATA_HOME="$manual_home/home/.local/share" TMPDIR="$manual_home/tmp" \
    CONTAINERS_REGISTRIES_CONF="$manual_home/registries.conf" \
    CONTAINERS_STORAGE_CONF="$manual_home/storage.conf" \
    CONTAINERS_CONF="$manual_home/containers.conf" \
    REGISTRY_AUTH_FILE="$manual_home/auth.json" \
    "$real_buildah" --root "$manual_store/root" --runroot "$manual_store/run" \
    --storage-driver vfs "$@"
}
manual_bud_s=""
manual_push_s=""
manual() {
  local ref="$IR_REGISTRY/bench/manual:1" t0 t1 t2
  t0=$EPOCHREALTIME
  manual_buildah bud --isolation chroot --layers --format oci "${ulimits[@]}" -t "$ref" "$ctx" \
    >"$IR_TMP/manual.log" 2>&1 || return 1
  t1=$EPOCHREALTIME
  manual_buildah push --tls-verify=false "$ref" "docker://$ref" >>"$IR_TMP/manual.log" 2>&1 ||
    return 1
  t2=$EPOCHREALTIME
  manual_bud_s=$(since "$t0" "$t1")
  manual_push_s=$(since "$t1" "$t2")
}

# What the registry holds for REPO:1: its layers and how many of the base's compressed
# layer blobs it reuses (mounted or linked: same digest) rather than new copies.
stored() { # stored REPO
  jq -r --argjson base "$base_layers" \
    '"\(.layers | length) layers; base layer blobs reused: \([.layers[].digest | select(IN($base[]))] | length) of \($base | length)"' \
    <<<"$(skopeo inspect --raw --tls-verify=false "docker://$IR_REGISTRY/$1:1")"
}

declare -A times
add() { times[$1]="${times[$1]:-} $2"; }
run_one() { # run_one NAME
  local name="$1" start t t_end
  fresh_registry
  rm -rf "$manual_store" "$ours_tmp" "$IR_TMP/ours-calls"
  mkdir -p "$manual_store" "$ours_tmp"
  sync
  start=$EPOCHREALTIME
  if ! "$name"; then
    tail -n 30 "$IR_TMP/$name.log" >&2
    ir_die "$name failed (the end of its log is above)"
  fi
  t_end=$EPOCHREALTIME
  t=$(since "$start" "$t_end")
  add "$name" "$t"
  case "$name" in
    ours)
      local calls="$IR_TMP/ours-calls" setup bud layout after line upload
      setup=$(awk -v s="$start" 'NR == 1 {printf "%.3f", $2 - s}' "$calls")
      bud=$(awk '$1 == "bud" {s += $3 - $2} END {printf "%.3f", s}' "$calls")
      layout=$(awk '$1 == "push" {s += $3 - $2} END {printf "%.3f", s}' "$calls")
      after=$(awk -v e="$t_end" 'END {printf "%.3f", e - $3}' "$calls")
      line="$(grep -E '^blobs: ' "$IR_TMP/ours.log" | tail -n 1)"
      upload=$(sed -nE 's/.*; ([0-9.]+) s\)$/\1/p' <<<"$line")
      upload=${upload:-0}
      add ours_setup "$setup"
      add ours_bud "$bud"
      add ours_layout "$layout"
      add ours_after "$after"
      add ours_upload "$upload"
      [[ -z "$(ls -A "$ours_tmp")" ]] || ir_log "ours left files in its TMPDIR: $(ls -A "$ours_tmp")"
      ir_log "ours:   $t s (setup $setup, bud $bud, buildah push to layout $layout, then $after to the end: $line); $(stored bench/built)"
      ;;
    manual)
      local c0 cleanup
      c0=$EPOCHREALTIME
      rm -rf "$manual_store"
      cleanup=$(since "$c0" "$EPOCHREALTIME")
      add manual_bud "$manual_bud_s"
      add manual_push "$manual_push_s"
      add manual_cleanup "$cleanup"
      ir_log "manual: $t s (bud $manual_bud_s, push $manual_push_s; storage removal afterwards $cleanup, not timed); $(stored bench/manual)"
      ;;
  esac
}

# --- cached rebuild: ours with cache: true, twice in a row on one registry --------------------
# The first put of Dockerfile.cache finds no cache (every step runs and is pushed as a cache
# image); the second, with a fresh TMPDIR (empty storage, as every put), pulls the base and
# the cache images and runs nothing. Both are timed whole; the image digests must be equal.
cache_put() { # cache_put NAME: prints the pushed digest
  jq -cn --arg r "$IR_REGISTRY/bench/cached" \
    '{source: {repository: $r, tag: "1"},
      params: {build: "ctx", dockerfile: "ctx/Dockerfile.cache", cache: true}}' |
    IMAGE_RESOURCE_BUILDAH="$real_buildah" TMPDIR="$ours_tmp" "$out_bin" "$work" \
      2>"$IR_TMP/$1.log" | jq -r .version.digest
}
cache_run() {
  local start t_uncached t_cached d1 d2
  fresh_registry
  rm -rf "$ours_tmp" && mkdir -p "$ours_tmp"
  start=$EPOCHREALTIME
  d1="$(cache_put uncached)" || { tail -n 30 "$IR_TMP/uncached.log" >&2; ir_die "the uncached put failed"; }
  t_uncached=$(since "$start" "$EPOCHREALTIME")
  start=$EPOCHREALTIME
  d2="$(cache_put cached)" || { tail -n 30 "$IR_TMP/cached.log" >&2; ir_die "the cached put failed"; }
  t_cached=$(since "$start" "$EPOCHREALTIME")
  [[ "$d1" == "$d2" ]] || ir_die "the cached rebuild pushed $d2, not $d1 (log: $IR_TMP/cached.log)"
  grep -q 'Using cache' "$IR_TMP/cached.log" || ir_die "the cached rebuild used no cache"
  add cache_uncached "$t_uncached"
  add cache_cached "$t_cached"
  ir_log "cache: uncached $t_uncached s, cached $t_cached s (same digest $d1)"
}

ir_log "runs: $runs of each, interleaved"
contenders=(ours manual)
n=${#contenders[@]}
for ((i = 0; i < runs; i++)); do
  for ((k = 0; k < n; k++)); do
    run_one "${contenders[$(((k + i) % n))]}"
  done
done
for ((i = 0; i < runs; i++)); do
  cache_run
done
ir_stop_registry

median() { # median NAME
  # shellcheck disable=SC2086 # word splitting of the list of times is intended
  printf '%s\n' ${times[$1]} | sort -n | awk '{a[NR] = $1} END {printf "%.3f\n", a[int((NR + 1) / 2)]}'
}
for name in ours manual; do
  ir_log "$name: runs${times[$name]} s, median $(median "$name") s"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
summary=$(jq -n \
  --argjson runs "$runs" \
  --argjson ours "$(median ours)" --argjson manual "$(median manual)" \
  --argjson ratio "$(ratio "$(median ours)" "$(median manual)")" \
  --argjson ob "$(median ours_bud)" --argjson ol "$(median ours_layout)" \
  --argjson os "$(median ours_setup)" --argjson oa "$(median ours_after)" \
  --argjson ou "$(median ours_upload)" \
  --argjson mb "$(median manual_bud)" --argjson mp "$(median manual_push)" \
  --argjson mc "$(median manual_cleanup)" \
  --argjson base_mb "$base_mb" \
  --argjson cu "$(median cache_uncached)" --argjson cc "$(median cache_cached)" \
  --argjson cr "$(ratio "$(median cache_cached)" "$(median cache_uncached)")" \
  --arg buildah "$buildah_version" \
  '{buildah: $buildah, runs: $runs, base_extra_mb: $base_mb, seconds: {ours: $ours, manual: $manual}, ratio: $ratio, target: 1.1,
    cache: {uncached: $cu, cached: $cc, ratio: $cr, target: 0.3},
    phases: {ours: {setup: $os, bud: $ob, push_to_layout: $ol, after_buildah: $oa, of_which_upload: $ou},
             manual: {bud: $mb, push: $mp, cleanup_not_timed: $mc}}}')
printf '%s\n' "$summary"
if [[ -n "$out" ]]; then printf '%s\n' "$summary" >"$out"; fi
