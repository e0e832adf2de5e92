# One image per service of the monorepo: raft-kv (the default) or raft-calculator.
#
#   docker build -t raft-kv .
#   docker build -t raft-calculator --build-arg APP=calculator .
#   docker run --rm raft-kv --help
#
# The entrypoint is the service's CLI, so `docker run IMAGE <flags>` runs a node (`serve` is the
# default command) and `docker run IMAGE status --endpoints http://host:8001` is a client.
# See deploy/README.md for a 3-node cluster (deploy/docker-compose.yml).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: install the workspace, build it, then deploy one app with its production deps ----
FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles from source when no prebuilt binary can be downloaded; node-gyp uses
# the headers of the Node install itself (npm_config_nodedir), so it never downloads them.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local \
  CI=true \
  TURBO_TELEMETRY_DISABLED=1 \
  PNPM=pnpm@10.34.9
WORKDIR /src
# The lockfile alone fetches every package into the store (a layer kept while it is unchanged).
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN npx --yes ${PNPM} fetch
COPY . .
RUN npx --yes ${PNPM} install --frozen-lockfile --offline
ARG APP=kv
RUN npx --yes ${PNPM} build --filter=@raft/${APP}...
# The app, its built workspace packages and its production dependencies, without the rest:
# no sources or configs of the app, and of better-sqlite3 only its compiled addon (the C
# sources and the object files are most of its size).
RUN npx --yes ${PNPM} --filter @raft/${APP} deploy --prod --legacy /out \
  && cd /out \
  && rm -rf src test .turbo tsconfig.json tsup.config.ts vitest.config.ts \
  && for b in node_modules/.pnpm/better-sqlite3@*/node_modules/better-sqlite3; do \
    mv "$b/build/Release/better_sqlite3.node" /tmp/better_sqlite3.node \
    && rm -rf "$b/build" "$b/deps" "$b/src" \
    && mkdir -p "$b/build/Release" \
    && mv /tmp/better_sqlite3.node "$b/build/Release/"; \
  done \
  && node dist/cli.js --help >/dev/null

# ---- runtime: Node, the deployed app, a non-root user and a data volume ----
FROM ${NODE_IMAGE} AS runtime
ARG APP=kv
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the node user; only /data is writable.
COPY --from=build /out /app
RUN ln -s /app/dist/cli.js /usr/local/bin/raft-${APP} \
  && mkdir -p /data \
  && chown node:node /data
USER node
VOLUME /data
# 8001: the HTTP API, metrics and dashboard; 9001: the Raft transport.
EXPOSE 8001 9001
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["--help"]
