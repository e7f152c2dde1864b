# modelgate worker and HTTP API (one image; docker-compose.yml picks the command).
#   docker build -t modelgate .
#   docker run modelgate                                   # worker: node dist/src/worker-main.js
#   docker run modelgate node dist/src/api/main.js         # API
# Configuration is environment only (src/config.ts); the policy file defaults to /app/policies/policy.yaml.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
# tsc compiles src/ and scripts/ (test/ and bench/ are not copied); then the workflow bundle is built once.
RUN npm run build

FROM node:20-slim
# git: the plain-git GitOps provider shells out to it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    MODELGATE_POLICY_FILE=/app/policies/policy.yaml \
    MODELGATE_DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY policies ./policies
# /data holds the git provider's caches; a named volume mounted there inherits this ownership.
RUN mkdir -p /data && chown node:node /data
USER node
CMD ["node", "dist/src/worker-main.js"]
