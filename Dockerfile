# One image for the redlease server and the demo workers; docker-compose.yml runs both from it with different
# commands:
#   server:  node dist/server/main.js [options]      (the default CMD; --help lists the options)
#   worker:  node dist/workers/worker.js [options]   (--help lists the flags)
#
# Two stages: `build` installs every dependency and compiles the TypeScript to dist/ (`npm run build`, plus the
# workers, which the package's build leaves out); the final image holds only the production dependencies and
# dist/ (no TypeScript, tsx, biome or buf), and runs as the unprivileged `node` user of the base image.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
# tsconfig.build.json compiles server/, client/src and scripts/lib; the workers are compiled into the same dist/
# with the same settings (their imports of client/src compile to the same files).
RUN npm run build \
  && echo '{"extends":"./tsconfig.build.json","include":["workers"]}' > tsconfig.workers.json \
  && npx tsc -p tsconfig.workers.json

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
# Owned by root and read-only to the user the processes run as.
COPY --from=build /app/dist ./dist
USER node
# gRPC (LockService, AdminService, health, reflection) and HTTP (lab JSON API, /health, /metrics). The server
# binds 127.0.0.1 by default: in a container, pass --grpc-listen 0.0.0.0:50051 --http-listen 0.0.0.0:8000.
EXPOSE 50051 8000
CMD ["node", "dist/server/main.js"]
