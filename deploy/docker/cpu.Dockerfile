# syntax=docker/dockerfile:1
# The CPU image: `gpujobs scheduler`, `gpujobs worker --backend cpu` and every client
# command (submit, status, watch, doctor). Built from the repository root:
#   docker build -f deploy/docker/cpu.Dockerfile -t gpujobs:cpu .
# With the `tls` feature, so rediss:// URLs work (SSL_CERT_FILE names a private CA).

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and target folders are cache mounts: a rebuild after a source change
# recompiles only the workspace crates.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gpujobs-cli --features tls,objects \
    && install -D -m 0755 target/release/gpujobs /out/gpujobs

FROM ${RUNTIME_IMAGE}
# ca-certificates: the system roots for rediss:// to a managed Redis and for S3 (https).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
        --shell /usr/sbin/nologin gpujobs
COPY --from=build /out/gpujobs /usr/local/bin/gpujobs
USER 10001:10001
# Workers and schedulers serve /metrics, /healthz and /readyz here.
ENV GPUJOBS_REDIS_URL=redis://redis:6379 \
    GPUJOBS_METRICS_ADDR=0.0.0.0:9464
EXPOSE 9464
# Alive: the process answers on its metrics port (readiness is `--ready`).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["gpujobs", "healthcheck"]
# SIGTERM starts the worker's graceful drain; give it --grace seconds plus a margin.
STOPSIGNAL SIGTERM
ENTRYPOINT ["gpujobs"]
CMD ["worker", "--backend", "cpu"]
