# Moatless container image.
#
#   docker build -t moatless .
#   docker run -v $PWD/moatless.yaml:/etc/moatless/moatless.yaml:ro \
#     -e MOATLESS_CLIENT_SECRET -e MOATLESS_SESSION_SECRET -p 8080:8080 moatless
#
# Two stages: the build stage has the dev dependencies (TypeScript) and compiles to dist/; the
# runtime stage has production dependencies, the compiled code and nothing else, and runs as
# the unprivileged `node` user. `moatless demo` is not in this image (its IdP, oidc-provider,
# is a dev dependency): run the demo with `npm run demo` from a checkout.

# ---- build ------------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# `npm ci` runs the `prepare` script (the build) as well; the explicit build keeps the step
# honest if `prepare` ever changes.
RUN npm ci --no-audit --no-fund && npm run build

# ---- runtime ----------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the TypeScript build, and TypeScript is a dev dependency.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY config ./config

USER node
# 8080: the public listener; 9090: the admin listener (health, metrics), keep it private.
EXPOSE 8080 9090
# The admin listener's liveness endpoint (admin.port in the config; 9090 is the default).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/moatless.js"]
CMD ["serve", "--config", "/etc/moatless/moatless.yaml"]
