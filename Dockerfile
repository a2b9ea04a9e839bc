# syntax=docker/dockerfile:1
# One image for every Node process of the messenger: listener (default command), sender,
# and the one-shot init job (migrations, signing key, self-signed certificate).
# Node 24 runs the TypeScript sources itself (type stripping: the code uses erasable syntax only,
# `tsc --erasableSyntaxOnly` checks it), so there is no build step and no loader in any command.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds dist/ for the native stack and the CLI, which the image does not use.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim
# openssl: scripts/make-cert.sh makes the self-signed certificate in the init job.
RUN apt-get update \
  && apt-get install -y --no-install-recommends openssl \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    SIGNING_KEY_FILE=/app/keys/signing-key.json \
    TLS_CERT_FILE=/app/tls/certificate.pem \
    TLS_KEY_FILE=/app/tls/private_key.pem
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY common ./common
COPY listener ./listener
COPY sender ./sender
COPY scripts ./scripts
# Named volumes mounted here start with this ownership, so the non-root user can write them.
RUN mkdir -p /app/keys /app/tls && chown node:node /app/keys /app/tls
USER node
EXPOSE 3000
# node, not npm, is PID 1's child: SIGTERM reaches the process and it shuts down gracefully.
CMD ["node", "listener/main.ts"]
