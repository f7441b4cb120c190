# syntax=docker/dockerfile:1
# The GPU worker image: `gpujobs worker --backend cuda`, built with the `cuda` feature
# on an NVIDIA CUDA base. Built from the repository root:
#   docker build -f deploy/docker/gpu.Dockerfile -t gpujobs:gpu .
# Run with the NVIDIA container toolkit (`--gpus all`, or a compose device reservation,
# or `nvidia.com/gpu` on Kubernetes), which mounts the driver's libcuda.so.1. The
# kernels are PTX for compute_75 built by CUDA 13.0: the host needs driver 580 or newer
# (`gpujobs doctor` checks that the driver accepts them).

ARG CUDA_VERSION=13.0.0
ARG RUST_IMAGE=rust:1.95-slim-bookworm

FROM ${RUST_IMAGE} AS rust

FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build
# The Rust toolchain from the official image (glibc 2.36 runs on Ubuntu's 2.39); nvcc
# and the libcuda link stub (lib64/stubs) come from the CUDA devel image.
COPY --from=rust /usr/local/cargo /usr/local/cargo
COPY --from=rust /usr/local/rustup /usr/local/rustup
ENV CARGO_HOME=/usr/local/cargo \
    RUSTUP_HOME=/usr/local/rustup \
    PATH=/usr/local/cargo/bin:/usr/local/cuda/bin:${PATH}
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# build.rs compiles the kernels with this image's nvcc (the committed PTX otherwise).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gpujobs-cli --features cuda,tls,objects \
    && install -D -m 0755 target/release/gpujobs /out/gpujobs

FROM nvidia/cuda:${CUDA_VERSION}-base-ubuntu24.04
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
        --shell /usr/sbin/nologin gpujobs
COPY --from=build /out/gpujobs /usr/local/bin/gpujobs
USER 10001:10001
# compute: the driver API; utility: nvidia-smi for operators.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    GPUJOBS_REDIS_URL=redis://redis:6379 \
    GPUJOBS_METRICS_ADDR=0.0.0.0:9464
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["gpujobs", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["gpujobs"]
CMD ["worker", "--backend", "cuda"]
