# syntax=docker/dockerfile:1
#
# Airlock: a caching npm registry mirror with a quarantine.
#
#   docker build -t airlock .
#   docker run -p 4873:4873 -v airlock-data:/data airlock
#
# Or with the compose file next to this one: `docker compose up -d`.

# ---------------------------------------------------------------------------
# Build stage. The workspace pins its toolchain to Rust 1.95 (rust-version in
# Cargo.toml; oxc 0.146 is the newest parser release that builds with it).
# ---------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder

WORKDIR /src

# No system libraries needed: rustls with aws-lc-rs and ring build their own
# crypto with the C compiler the rust slim image already has (gcc, libc6-dev);
# no OpenSSL, no cmake (aws-lc-sys uses its cc-based build by default).

# The whole workspace (the .dockerignore keeps target/, bench/out, node_modules
# and data directories out of the context). Every workspace member's manifest
# must be present for Cargo to resolve the workspace, even the ones not built.
COPY . .

# Build only the server binary, exactly as locked. The cache mounts keep the
# registry and target directory between builds; the binary is copied out of the
# cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p airlock-server --bin airlock \
 && install -D -m 0755 target/release/airlock /out/airlock

# ---------------------------------------------------------------------------
# Runtime stage: Debian slim with CA certificates (for HTTPS to the upstream
# registry) and the single binary. No compiler, no package manager caches.
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# Unpinned on purpose: the newest Debian security update of ca-certificates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 airlock \
 && useradd --system --uid 10001 --gid airlock --home-dir /data --shell /usr/sbin/nologin airlock \
 && mkdir -p /data /etc/airlock \
 && chown airlock:airlock /data

COPY --from=builder /out/airlock /usr/local/bin/airlock
# The documented defaults, for reference; point AIRLOCK_CONFIG at a mounted copy
# to use a configuration file (see docker-compose.yml).
COPY config/airlock.toml /etc/airlock/airlock.toml.example

# Environment variables override the configuration file; flags override both.
ENV AIRLOCK_LISTEN=0.0.0.0:4873 \
    AIRLOCK_DATA_DIR=/data \
    AIRLOCK_LOG_FORMAT=text

# Numeric, so that runtimes enforcing runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4873

# The image has no curl: the probe is bash's /dev/tcp speaking one HTTP/1.1
# request to the health endpoint on the port from AIRLOCK_LISTEN, and passing
# only on a 200 status line.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${AIRLOCK_LISTEN##*:} && printf 'GET /-/airlock/health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200 '"]

# SIGTERM (docker stop) drains in-flight requests for server.shutdown_grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["airlock"]
CMD ["serve"]
