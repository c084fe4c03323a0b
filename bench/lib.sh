# shellcheck shell=bash
# shellcheck disable=SC2034 # the IR_* variables are read by the scripts that source this file
# Shared helpers for ci/demo and bench/check.sh: a throwaway local registry and a
# small image made without any network. Source it from a script that runs with
# `set -euo pipefail`; it defines functions and IR_* variables only.
#
#   ir_init                       make $IR_TMP and install the EXIT/INT/TERM cleanup
#   ir_require CMD...             fail (pointing at ci/setup) unless every CMD exists
#   ir_start_registry             docker-registry on 127.0.0.1:<free port>, plain HTTP
#                                 (basic auth when $IR_HTPASSWD names an htpasswd file;
#                                 an access log in $IR_REGISTRY_DIR/registry.log when
#                                 IR_ACCESSLOG is set);
#                                 sets IR_REGISTRY (host:port), IR_REGISTRY_PORT, IR_REGISTRY_PID
#   ir_make_image LAYOUT TAG      an OCI layout with a busybox-static image (umoci)
#   ir_push LAYOUT TAG REF        skopeo copy oci:LAYOUT:TAG docker://REF (plain HTTP)
#   ir_manifest_digest REF        sha256 of `skopeo inspect --raw docker://REF`
#   ir_check_request REPO TAG     the JSON request for `check` (compact, one line)
#   ir_build_release              cargo build --release (cargo decides what is stale);
#                                 skipped when IR_CHECK_BIN names another check executable
#                                 or IR_BIN_DIR another directory of executables
#   ir_bin_dir                    the directory of check, in and out: $IR_BIN_DIR or
#                                 target/release (ci/test's smoke runs use the debug
#                                 build its tests made: they check the scripts, not times)
#   ir_check_bin                  the check executable: $IR_CHECK_BIN or $(ir_bin_dir)/check
#   ir_make_big_image LAYOUT TAG RANDOM_MB QUICK
#                                 the benchmark image: layers of real files from /usr and
#                                 RANDOM_MB of random data (QUICK=1: a small one); sets
#                                 IR_BIG_MANIFEST (JSON) and IR_BIG_DIGEST (hex)
#   ir_cleanup                    stop the registry, remove $IR_TMP

IR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IR_TMP=""
IR_REGISTRY=""
IR_REGISTRY_PORT=""
IR_REGISTRY_PID=""
IR_REGISTRY_DIR=""
# Fixed timestamps keep the demo image, and so its digest, the same on every run.
IR_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}" # 2024-01-01T00:00:00Z

ir_log() { printf '==> %s\n' "$*" >&2; }
ir_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ir_init() {
  IR_TMP="$(mktemp -d -t image-resource.XXXXXX)"
  trap ir_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

ir_cleanup() {
  local rc=$?
  ir_stop_registry
  if [[ -n "$IR_TMP" && -d "$IR_TMP" ]]; then
    rm -rf "$IR_TMP"
  fi
  return "$rc"
}

ir_require() {
  local cmd missing=()
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  ((${#missing[@]} == 0)) ||
    ir_die "missing ${missing[*]}: run ci/setup (installs them with apt-get)"
}

# True when something accepts connections on 127.0.0.1:$1.
ir_port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ir_pick_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    ir_port_in_use "$port" || break
  done
  printf '%s\n' "$port"
}

# ir_start_registry
# Starts docker-registry (distribution 2.8) with its storage and config in a
# fresh directory under $IR_TMP, on a free loopback port, and waits until /v2/
# answers. With IR_HTPASSWD set to an htpasswd file (bcrypt, `htpasswd -B`), the
# registry asks for basic auth.
ir_start_registry() {
  local htpasswd="${IR_HTPASSWD:-}" dir attempt port status
  [[ -n "$IR_TMP" ]] || ir_die "ir_start_registry: call ir_init first"
  dir="$(mktemp -d "$IR_TMP/registry.XXXXXX")"
  for attempt in 1 2 3 4 5; do
    port="$(ir_pick_port)"
    {
      printf 'version: 0.1\n'
      if [[ -n "${IR_ACCESSLOG:-}" ]]; then
        printf 'log:\n  level: warn\n  accesslog:\n    disabled: false\n'
      else
        printf 'log:\n  level: warn\n  accesslog:\n    disabled: true\n'
      fi
      printf 'storage:\n  filesystem:\n    rootdirectory: %s/storage\n' "$dir"
      printf '  delete:\n    enabled: true\n'
      printf 'http:\n  addr: 127.0.0.1:%s\n  secret: image-resource-local-only\n' "$port"
      if [[ -n "$htpasswd" ]]; then
        printf 'auth:\n  htpasswd:\n    realm: image-resource\n    path: %s\n' "$htpasswd"
      fi
    } >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
    IR_REGISTRY_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
      if ! kill -0 "$IR_REGISTRY_PID" 2>/dev/null; then
        break # exited: most likely the port was taken meanwhile; try another
      fi
      status="$(curl --noproxy '*' -s -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$port/v2/" || true)"
      if [[ "$status" == 200 || "$status" == 401 ]]; then
        IR_REGISTRY_PORT="$port"
        IR_REGISTRY="127.0.0.1:$port"
        IR_REGISTRY_DIR="$dir"
        ir_log "registry: http://$IR_REGISTRY (pid $IR_REGISTRY_PID, storage $dir/storage)"
        return 0
      fi
      sleep 0.1
    done
    ir_stop_registry
    printf 'registry attempt %s on port %s failed; log:\n' "$attempt" "$port" >&2
    tail -n 20 "$dir/registry.log" >&2 || true
  done
  ir_die "could not start docker-registry (see the log above)"
}

ir_stop_registry() {
  if [[ -n "$IR_REGISTRY_PID" ]]; then
    kill "$IR_REGISTRY_PID" 2>/dev/null || true
    wait "$IR_REGISTRY_PID" 2>/dev/null || true
    IR_REGISTRY_PID=""
  fi
}

# Path of a statically linked busybox (Debian's busybox-static package).
ir_busybox() {
  local bb
  for bb in /bin/busybox /usr/bin/busybox; do
    [[ -x "$bb" ]] && { printf '%s\n' "$bb"; return 0; }
  done
  ir_die "no busybox: run ci/setup (installs busybox-static)"
}

# ir_make_image LAYOUT TAG
# Builds, without network, an OCI image layout at LAYOUT holding TAG: layer 1 is
# /bin (busybox-static and a few applet symlinks), layer 2 is /etc (passwd,
# group, os-release); the config runs /bin/sh.
ir_make_image() {
  local layout="$1" tag="$2" root created applet
  root="$(mktemp -d "$IR_TMP/rootfs.XXXXXX")"
  created="$(date -u -d "@$IR_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
  mkdir -p "$root/bin" "$root/etc"
  cp "$(ir_busybox)" "$root/bin/busybox"
  chmod 0755 "$root/bin/busybox"
  for applet in sh ls cat echo env id uname; do
    ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'NAME="image-resource demo"\nID=demo\n' >"$root/etc/os-release"
  chmod 0644 "$root"/etc/*
  find "$root" -exec touch -h -d "@$IR_EPOCH" {} +

  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci insert --image "$layout:$tag" --history.created "$created" \
    --history.created_by "COPY busybox-static /bin" "$root/bin" /bin
  umoci insert --image "$layout:$tag" --history.created "$created" \
    --history.created_by "COPY etc /etc" "$root/etc" /etc
  umoci config --image "$layout:$tag" --no-history --created "$created" \
    --author "image-resource demo" \
    --config.env PATH=/bin --config.cmd /bin/sh \
    --config.label org.opencontainers.image.title=busybox-demo \
    --config.label org.opencontainers.image.source=image-resource/bench/lib.sh
  rm -rf "$root"
}

# ir_push LAYOUT TAG REF: copy the layout's TAG to docker://REF over plain HTTP.
ir_push() {
  local layout="$1" tag="$2" ref="$3" policy="$IR_TMP/policy.json"
  [[ -f "$policy" ]] ||
    printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$policy"
  skopeo --policy "$policy" copy --quiet --dest-tls-verify=false \
    "oci:$layout:$tag" "docker://$ref"
}

# ir_manifest_digest REF: the digest of the manifest that REF's tag points at.
ir_manifest_digest() {
  local sum
  sum="$(skopeo inspect --raw --tls-verify=false "docker://$1" | sha256sum)"
  printf 'sha256:%s\n' "${sum%% *}"
}

ir_check_request() {
  jq -cn --arg repository "$1" --arg tag "$2" \
    '{source: {repository: $repository, tag: $tag}}'
}

ir_bin_dir() {
  printf '%s\n' "${IR_BIN_DIR:-$IR_ROOT/target/release}"
}

ir_check_bin() {
  printf '%s\n' "${IR_CHECK_BIN:-$(ir_bin_dir)/check}"
}

ir_build_release() {
  if [[ -n "${IR_CHECK_BIN:-}" ]]; then
    ir_log "IR_CHECK_BIN=$IR_CHECK_BIN: not building"
    return 0
  fi
  if [[ -n "${IR_BIN_DIR:-}" ]]; then
    ir_log "IR_BIN_DIR=$IR_BIN_DIR: not building"
    return 0
  fi
  ir_log "cargo build --release"
  (cd "$IR_ROOT" && cargo build --release --quiet --bins)
  local bin
  for bin in check in out; do
    [[ -x "$IR_ROOT/target/release/$bin" ]] ||
      ir_die "cargo build --release did not produce target/release/$bin"
  done
}

# ir_make_big_image LAYOUT TAG RANDOM_MB QUICK: see the header.
ir_make_big_image() {
  local layout="$1" tag="$2" random_mb="$3" quick="$4" config cdigest manifest mdigest
  local -a diff_ids=() layers_json=()
  mkdir -p "$layout/blobs/sha256"
  _ir_add_layer() { # _ir_add_layer NAME COMMAND... (the command writes a tar on stdout)
    local name="$1" tmp diff digest size
    shift
    tmp="$layout/blobs/sha256/tmp-$name"
    "$@" | tee >(sha256sum | cut -d' ' -f1 >"$IR_TMP/diff-$name") | pigz -6 >"$tmp"
    while [[ ! -s "$IR_TMP/diff-$name" ]]; do sleep 0.05; done
    diff="$(cat "$IR_TMP/diff-$name")"
    digest="$(sha256sum "$tmp" | cut -d' ' -f1)"
    size="$(stat -c %s "$tmp")"
    mv "$tmp" "$layout/blobs/sha256/$digest"
    diff_ids+=("\"sha256:$diff\"")
    layers_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$digest\",\"size\":$size}")
    ir_log "layer $name: $((size / 1000000)) MB compressed"
  }
  # shellcheck disable=SC2317 # called through _ir_add_layer
  _ir_random_tar() { # _ir_random_tar MB: a tar with one file of MB random megabytes
    local dir="$IR_TMP/random-$1"
    mkdir -p "$dir/data"
    head -c "$(($1 * 1000000))" /dev/urandom >"$dir/data/random-$1.bin"
    tar -C "$dir" -cf - data
    rm -rf "$dir"
  }
  if ((quick)); then
    _ir_add_layer include tar -C / -cf - usr/include
    _ir_add_layer random _ir_random_tar "$random_mb"
  else
    _ir_add_layer share tar -C / -cf - usr/share
    _ir_add_layer bin tar -C / -cf - usr/bin usr/sbin
    _ir_add_layer include tar -C / -cf - usr/include usr/libexec
    _ir_add_layer random1 _ir_random_tar $((random_mb / 2))
    _ir_add_layer random2 _ir_random_tar $((random_mb / 2))
  fi
  config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/usr/bin\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(IFS=,; echo "${diff_ids[*]}")]}}"
  printf '%s' "$config" >"$IR_TMP/config"
  cdigest="$(sha256sum "$IR_TMP/config" | cut -d' ' -f1)"
  mv "$IR_TMP/config" "$layout/blobs/sha256/$cdigest"
  manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdigest\",\"size\":${#config}},\"layers\":[$(IFS=,; echo "${layers_json[*]}")]}"
  printf '%s' "$manifest" >"$IR_TMP/manifest"
  mdigest="$(sha256sum "$IR_TMP/manifest" | cut -d' ' -f1)"
  mv "$IR_TMP/manifest" "$layout/blobs/sha256/$mdigest"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$mdigest" "${#manifest}" "$tag" >"$layout/index.json"
  IR_BIG_MANIFEST="$manifest"
  IR_BIG_DIGEST="$mdigest"
}
