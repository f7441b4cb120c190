# shellcheck shell=bash
# Sourced by scripts/compose-e2e.sh: local stand-ins for the public images that the
# Dockerfiles and the compose file name, for a machine that reaches no image registry.
#
#   ensure_image TAG KIND     KIND: debian | rust | redis | prometheus | frontend
#
# ensure_image does nothing when TAG is already in the engine's image store, then tries
# `docker pull TAG`, and only when that fails builds a stand-in under the same tag, so the
# Dockerfiles and deploy/docker-compose.yml are built and run exactly as committed:
#   debian               `debootstrap --variant=minbase` of the suite the tag names
#   rust                 that Debian plus gcc and this machine's own Rust toolchain (its
#                        version must match the tag's) in the official image's layout
#   redis, prometheus    that Debian plus the Debian package, with the official image's
#                        working directory and entrypoint
#   frontend             the `# syntax=docker/dockerfile:1` frontend: BuildKit's Dockerfile
#                        frontend built with Debian's Go from Debian's docker.io sources
# Stand-ins stay in the image store, so a later run finds them (delete them with
# `docker rmi TAG` to rebuild). Registries that a build reaches from inside a container
# (crates.io) are trusted through this machine's extra CA certificates, which are copied
# into the Rust stand-in when it is built and never into the repository.
# Expects: DOCKER (the client), root (debootstrap), a `log` function, and
# scripts/lib/apt.sh sourced.

standin_work=""

standin_cleanup() {
    if [ -n "$standin_work" ]; then rm -rf "$standin_work"; fi
}

# A scratch folder for the stand-ins' build contexts, removed by standin_cleanup.
standin_dir() {
    if [ -z "$standin_work" ]; then
        standin_work="$(mktemp -d /var/tmp/gpujobs-standins.XXXXXX)"
    fi
    mkdir -p "$standin_work/$1"
    echo "$standin_work/$1"
}

ensure_image() {
    local tag="$1" kind="$2"
    if "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
        return 0
    fi
    if timeout 60 "$DOCKER" pull -q "$tag" >/dev/null 2>&1; then
        log "pulled $tag"
        return 0
    fi
    log "$tag cannot be pulled: building a local stand-in ($kind)"
    local started=$SECONDS
    "standin_$kind" "$tag"
    log "stand-in $tag built in $((SECONDS - started)) s"
}

# debian:<suite>-slim → <suite>; the Rust tag's suite is its last dash-separated word.
standin_suite() {
    local name="${1##*:}"
    name="${name%-slim}"
    echo "${name##*-}"
}

standin_debian() {
    local tag="$1" suite dir
    suite="$(standin_suite "$tag")"
    apt_packages debootstrap
    dir="$(standin_dir "rootfs-$suite")"
    debootstrap --variant=minbase "$suite" "$dir" http://deb.debian.org/debian >/dev/null
    # What the official slim image leaves out: the package lists and caches.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin
    tar -C "$dir" -c . | "$DOCKER" import --change 'CMD ["bash"]' - "$tag" >/dev/null
}

# Builds TAG from a generated Dockerfile in DIR (no syntax line: the engine's built-in
# frontend), on top of the Debian stand-in for the tag's suite.
standin_build() {
    local tag="$1" dir="$2"
    DOCKER_BUILDKIT=1 "$DOCKER" build -q -t "$tag" "$dir" >/dev/null
}

standin_rust() {
    local tag="$1" want have base dir sysroot
    want="${tag#*:}"
    want="${want%%-*}"
    have="$(rustc --version | cut -d' ' -f2)"
    case "$have" in
        "$want" | "$want".*) ;;
        *)
            echo "error: $tag needs Rust $want; this machine has $have" >&2
            return 1
            ;;
    esac
    base="debian:$(standin_suite "$tag")-slim"
    ensure_image "$base" debian
    dir="$(standin_dir rust)"
    sysroot="$(rustc --print sysroot)"
    # The toolchain without its documentation: rustc, cargo, the standard library.
    mkdir -p "$dir/toolchain" "$dir/certs"
    cp -a "$sysroot/bin" "$sysroot/lib" "$dir/toolchain/"
    if [ -d "$sysroot/libexec" ]; then cp -a "$sysroot/libexec" "$dir/toolchain/"; fi
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$dir/certs/"
    fi
    cat >"$dir/Dockerfile" <<EOF
FROM $base
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
    && rm -rf /var/lib/apt/lists/*
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
COPY toolchain/ /usr/local/rustup/toolchains/$have-x86_64-unknown-linux-gnu/
RUN mkdir -p /usr/local/cargo/bin \\
    && for b in cargo rustc rustdoc; do \\
        ln -s /usr/local/rustup/toolchains/$have-x86_64-unknown-linux-gnu/bin/\$b /usr/local/cargo/bin/\$b; \\
    done
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
    standin_build "$tag" "$dir"
}

# standin_package TAG PACKAGE WORKDIR INSTRUCTION...: Debian plus one package, in a
# working directory of its own (the official image's), with the image's last
# instructions (EXPOSE, ENTRYPOINT, CMD) as given.
standin_package() {
    local tag="$1" package="$2" workdir="$3" dir
    shift 3
    ensure_image debian:bookworm-slim debian
    dir="$(standin_dir "$package")"
    {
        echo "FROM debian:bookworm-slim"
        echo "RUN apt-get update \\"
        echo "    && apt-get install -y --no-install-recommends $package \\"
        echo "    && rm -rf /var/lib/apt/lists/* && mkdir -p $workdir"
        echo "WORKDIR $workdir"
        printf '%s\n' "$@"
    } >"$dir/Dockerfile"
    standin_build "$tag" "$dir"
}

standin_redis() {
    standin_package "$1" redis-server /data 'EXPOSE 6379' 'CMD ["redis-server"]'
}

standin_prometheus() {
    standin_package "$1" prometheus /prometheus 'EXPOSE 9090' \
        'ENTRYPOINT ["/usr/bin/prometheus"]' \
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
}

# BuildKit's Dockerfile frontend (the image a `# syntax=` line names), from the BuildKit
# sources that Debian's docker.io source package carries, built in GOPATH mode with
# Debian's Go packages and the frontend's optional instructions (RUN --mount) enabled.
standin_dockerfile_frontend_source="docker.io_20.10.24+dfsg1.orig.tar.xz"
standin_dockerfile_frontend_sha256="952f68f219a5aac7c293d2dfb26fb4c641b60f6d8c5eebf8cbf32a3f1429d2ce"

standin_frontend() {
    local tag="$1" dir src
    apt_packages curl ca-certificates golang-go \
        golang-github-containerd-containerd-dev golang-github-containerd-typeurl-dev \
        golang-github-docker-distribution-dev golang-github-docker-go-connections-dev \
        golang-github-docker-go-units-dev golang-github-gogo-googleapis-dev \
        golang-github-gogo-protobuf-dev golang-github-golang-protobuf-1-5-dev \
        golang-github-google-shlex-dev golang-github-moby-locker-dev \
        golang-github-opencontainers-go-digest-dev golang-github-opencontainers-image-spec-dev \
        golang-github-pkg-errors-dev golang-github-sirupsen-logrus-dev \
        golang-golang-x-crypto-dev golang-golang-x-sync-dev golang-golang-x-sys-dev \
        golang-google-genproto-dev golang-google-grpc-dev
    dir="$(standin_dir dockerfile-frontend)"
    src="$dir/$standin_dockerfile_frontend_source"
    curl -fsSL -o "$src" \
        "http://deb.debian.org/debian/pool/main/d/docker.io/$standin_dockerfile_frontend_source"
    echo "$standin_dockerfile_frontend_sha256  $src" | sha256sum -c --quiet -
    mkdir -p "$dir/gopath/src/github.com/docker/docker" "$dir/image/bin"
    tar -xJf "$src" -C "$dir/gopath/src/github.com/docker/docker" --strip-components=3 \
        --wildcards '*/engine/*'
    # The frontend's own main (BuildKit's cmd/dockerfile-frontend, which the source
    # package does not carry), inside the engine's tree: its vendor folder holds BuildKit,
    # which imports a few of the engine's own packages.
    mkdir -p "$dir/gopath/src/github.com/docker/docker/cmd/dockerfile-frontend"
    cat >"$dir/gopath/src/github.com/docker/docker/cmd/dockerfile-frontend/main.go" <<'EOF'
package main

import (
	"context"
	"fmt"
	"os"

	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway/grpcclient"
)

func main() {
	if err := grpcclient.RunFromEnvironment(context.Background(), dockerfile.Build); err != nil {
		fmt.Fprintf(os.Stderr, "fatal error: %+v\n", err)
		os.Exit(1)
	}
}
EOF
    (
        cd "$dir/gopath/src/github.com/docker/docker/cmd/dockerfile-frontend" || exit 1
        GO111MODULE=off GOPATH="$dir/gopath:/usr/share/gocode" CGO_ENABLED=0 \
            GOCACHE="$dir/gocache" go build -tags "dfrunmount dfsecrets dfssh" \
            -o "$dir/image/bin/dockerfile-frontend" .
    )
    tar -C "$dir/image" -c . |
        "$DOCKER" import --change 'ENTRYPOINT ["/bin/dockerfile-frontend"]' - "$tag" >/dev/null
}
