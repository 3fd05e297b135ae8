# redis-health: a small, non-root image holding one static-enough binary.
# Build, tag and push (no image is published; set the manifests' image: to it):
#   docker build -t registry.example.com/redis-health:0.1.0 .
#   docker push registry.example.com/redis-health:0.1.0

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: rebuilt only when Cargo.toml or
# Cargo.lock change, not on every source edit.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
# Touch so cargo rebuilds the crate itself over the placeholder above.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && strip target/release/redis-health

# glibc, CA certificates and a nonroot user (65532), no shell and no package
# manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/redis-health /usr/local/bin/redis-health
USER 65532:65532
# No REDIS_HEALTH_* here: env beats the config file, so an image default
# would silently override a mounted file's key (server.listen already
# defaults to [::]:8080). CI checks that the image sets none.
EXPOSE 8080
# The container is healthy when its Redis is (the `check` subcommand runs one
# check and exits 0 or 1), so compose's `condition: service_healthy` waits for
# a Redis that can serve. Kubernetes ignores HEALTHCHECK: use the probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/redis-health", "check"]
ENTRYPOINT ["/usr/local/bin/redis-health"]
CMD ["serve"]
