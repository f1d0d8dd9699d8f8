#!/usr/bin/env node
// A real, independent OAuth 2.0 authorization server for tokenrelay's end-to-end tests: node-oidc-provider
// (OpenID Certified), configured for the client-credentials grant only.
//
// Usage:  node server.mjs --port 0 --config clients.json [--host 127.0.0.1] [--parent-pid PID]
//   (or the environment: E2E_IDP_PORT, E2E_IDP_HOST, E2E_IDP_CONFIG, E2E_IDP_PARENT_PID)
//
// When it listens it prints exactly one JSON line on stdout, e.g.
//   {"ready":true,"issuer":"http://127.0.0.1:40123","port":40123,"pid":4242,"oidc_provider":"9.13.3"}
// Everything else (oidc-provider's notices, our event log) goes to stderr, so stdout is machine-readable.
// SIGTERM/SIGINT close the listener and exit 0. No secret, key or token is ever logged.
//
// The config file (written by tests/e2e/conftest.py) chooses everything a test depends on:
//   {
//     "resources": [{"identifier": "urn:...", "scope": "api:read api:write", "format": "jwt"|"opaque", "ttl": 60}],
//     "default_resource": "urn:..." | null,
//     "scopes": ["api:read", "api:write"],
//     "clients": [ <RFC 7591 client metadata: client_id, client_secret, token_endpoint_auth_method, jwks, scope> ]
//   }
// The provider's own signing key is generated at start (never committed, never written to disk).

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints its development notices with console.info (stdout); keep stdout for the ready line.
console.info = (...args) => console.error(...args);

const { version: OIDC_PROVIDER_VERSION } = JSON.parse(
  readFileSync(new URL('./node_modules/oidc-provider/package.json', import.meta.url), 'utf8'),
);

function log(event, fields = {}) {
  process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function readOptions() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      config: { type: 'string' },
      'parent-pid': { type: 'string' },
    },
  });
  const port = Number(values.port ?? process.env.E2E_IDP_PORT ?? '0');
  const host = values.host ?? process.env.E2E_IDP_HOST ?? '127.0.0.1';
  const configPath = values.config ?? process.env.E2E_IDP_CONFIG;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid port: ${values.port ?? process.env.E2E_IDP_PORT}`);
  }
  if (!configPath) {
    throw new Error('missing --config <file> (or E2E_IDP_CONFIG)');
  }
  const parentPid = Number(values['parent-pid'] ?? process.env.E2E_IDP_PARENT_PID ?? '0');
  return { port, host, parentPid, config: JSON.parse(readFileSync(configPath, 'utf8')) };
}

// Clients only ever use the client-credentials grant: no redirect URIs, no response types.
function normalizeClient(client) {
  return {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    ...client,
  };
}

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

function resourceServerInfo(resource) {
  const format = resource.format ?? 'jwt';
  if (format !== 'jwt' && format !== 'opaque') {
    throw new Error(`resource ${resource.identifier}: format must be "jwt" or "opaque"`);
  }
  return {
    scope: resource.scope ?? '',
    audience: resource.identifier,
    accessTokenTTL: resource.ttl ?? 60,
    accessTokenFormat: format,
    ...(format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
  };
}

function providerConfiguration(config) {
  const resources = new Map((config.resources ?? []).map((r) => [r.identifier, resourceServerInfo(r)]));
  const introspectors = new Set(config.introspection_clients ?? []);
  return {
    clients: (config.clients ?? []).map(normalizeClient),
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: config.scopes ?? [],
    // Client assertions (private_key_jwt) may be addressed to the issuer or the token endpoint (RFC 7523).
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'client_secret_jwt'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: {
        enabled: true,
        // RFC 7009 §2.1: a client may revoke only its own tokens.
        allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        // The protected resource (listed in "introspection_clients") may introspect any token; a client its own.
        allowedPolicy: async (ctx, client, token) =>
          introspectors.has(client.clientId) || token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => oneOf ?? config.default_resource ?? undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, identifier) => {
          const info = resources.get(identifier);
          if (!info) throw new errors.InvalidTarget();
          return info;
        },
      },
    },
    ttl: {
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 60,
    },
  };
}

// Diagnostics without secrets: the route and the RFC 6749 error code/description the provider answered with.
function logEvents(provider) {
  for (const name of ['grant.error', 'revocation.error', 'introspection.error']) {
    provider.on(name, (ctx, err) => {
      log(name, { route: ctx.oidc?.route, error: err.error, error_description: err.error_description });
    });
  }
  provider.on('server_error', (ctx, err) => log('server_error', { route: ctx.oidc?.route, message: err.message }));
  provider.on('grant.success', (ctx) => log('grant.success', { client_id: ctx.oidc?.client?.clientId }));
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address()));
  });
}

function shutdownOn(server) {
  let closing = false;
  const stop = (signal) => {
    if (closing) return;
    closing = true;
    log('shutdown', { signal });
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return stop;
}

// A test run killed hard (SIGKILL, a CI timeout) cannot stop us; with --parent-pid we notice and leave.
function exitWithParent(parentPid, stop) {
  if (!parentPid) return;
  setInterval(() => {
    try {
      process.kill(parentPid, 0);
    } catch {
      stop('parent exited');
    }
  }, 1000).unref();
}

async function main() {
  if (typeof URL.parse !== 'function') {
    throw new Error(`oidc-provider ${OIDC_PROVIDER_VERSION} needs Node.js >= 20.18 (URL.parse); this is ${process.version}`);
  }
  const {
    port, host, parentPid, config,
  } = readOptions();
  // Bind first (port 0 → a free port), then build the provider: the issuer must carry the real port.
  const server = createServer();
  const address = await listen(server, port, host);
  const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const issuer = `http://${hostPart}:${address.port}`;

  const provider = new Provider(issuer, providerConfiguration(config));
  logEvents(provider);
  server.on('request', provider.callback());
  exitWithParent(parentPid, shutdownOn(server));

  process.stdout.write(
    `${JSON.stringify({
      ready: true,
      issuer,
      port: address.port,
      pid: process.pid,
      oidc_provider: OIDC_PROVIDER_VERSION,
    })}\n`,
  );
}

main().catch((err) => {
  log('fatal', { message: err.message });
  process.exit(1);
});
