# A Concord member image for builders that can pull from a registry:  docker build -t concord .
# It is the image `npm run image` builds FROM scratch where nothing can be pulled (image/build.ts): the same
# entrypoint (`concord server`, flags as arguments), the /data volume (CONCORD_DATA_DIR=/data) and the ports
# (7000 clients and HTTP, 7001 peers); keep the two in step. The project's CI cannot pull node:24-slim, so this
# file is not built there. How to run it: docs/operations.md, "Container image".

FROM node:24-slim AS build
# The malloc_trim addon (binding.gyp, native/) is compiled by npm ci's install script.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json binding.gyp tsconfig.json tsconfig.build.json ./
COPY native ./native
RUN npm ci
COPY src ./src
COPY cli ./cli
RUN npx tsc -p tsconfig.build.json --outDir dist --sourceMap false --declaration false && npm prune --omit=dev

FROM node:24-slim
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/build/Release/malloc_trim.node ./build/Release/malloc_trim.node
ENV HOME=/tmp CONCORD_DATA_DIR=/data
RUN mkdir -p /data
VOLUME /data
EXPOSE 7000 7001
ENTRYPOINT ["/usr/local/bin/node", "--single-threaded-gc", "/app/dist/cli/concord.js", "server"]
