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
//     "clients": [ <RFC 7591 client metadata: client_id, client_secret, token_endpoint_auth_method, jwks, scope> ],
//     "mtls": {"cert_file": "server.pem", "key_file": "server-key.pem", "client_ca_file": "ca.pem"}   (optional)
//   }
//
// With "mtls", a second listener serves the same provider over HTTPS on another free port and asks every client
// for a certificate (RFC 8705): tls_client_auth and self_signed_tls_client_auth are enabled, the metadata's
// "mtls_endpoint_aliases" point at that listener (the issuer stays the http one), the ready line gains
// "mtls_url" and "mtls_port", and events say which listener ("plain" or "mtls") answered (errors also carry
// oidc-provider's error_detail). Without it the server behaves and prints exactly as before.
//
// The provider's own signing key is generated at start (never committed, never written to disk).

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
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

// The client certificate of the request's TLS connection as PEM (the contract of oidc-provider 9's
// features.mTLS.getCertificate), or undefined: none presented, or the plain-http listener.
function peerCertificate(ctx) {
  const cert = ctx.socket.getPeerX509Certificate?.();
  return cert ? cert.toString() : undefined;
}

// Node prints a subject as "C=..\nO=..\nCN=.." (certificate order); RFC 4514 (tls_client_auth_subject_dn, RFC 8705
// §2.1.2) writes the most specific RDN first: "CN=..,O=..,C=..".
function subjectDn(cert) {
  return cert.subject.split('\n').reverse().join(',');
}

// RFC 8705 §2.1 (tls_client_auth: a certificate chaining to "client_ca_file", matched by subject DN) and §2.2
// (self_signed_tls_client_auth: matched by the x5t#S256 of a certificate in the client's jwks, done by the
// provider). Only tls_client_auth_subject_dn is supported; any other tls_client_auth_* registration never matches.
function mtlsFeature() {
  return {
    enabled: true,
    tlsClientAuth: true,
    selfSignedTlsClientAuth: true,
    getCertificate: peerCertificate,
    // The listener verifies against client_ca_file but does not reject (rejectUnauthorized: false): the
    // provider decides, and self-signed certificates must get through to it.
    certificateAuthorized: (ctx) => ctx.socket.authorized === true,
    certificateSubjectMatches: (ctx, property, expected) => {
      const cert = ctx.socket.getPeerX509Certificate?.();
      if (!cert || property !== 'tls_client_auth_subject_dn') return false;
      return subjectDn(cert) === expected;
    },
  };
}

function providerConfiguration(config) {
  const resources = new Map((config.resources ?? []).map((r) => [r.identifier, resourceServerInfo(r)]));
  const introspectors = new Set(config.introspection_clients ?? []);
  const mtls = config.mtls ? ['tls_client_auth', 'self_signed_tls_client_auth'] : [];
  return {
    clients: (config.clients ?? []).map(normalizeClient),
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: config.scopes ?? [],
    // Client assertions (private_key_jwt) may be addressed to the issuer or the token endpoint (RFC 7523).
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'client_secret_jwt', ...mtls],
    features: {
      ...(config.mtls ? { mTLS: mtlsFeature() } : {}),
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
// With an mTLS listener, events also name the listener that answered ("plain" or "mtls"), and errors carry
// oidc-provider's error_detail (a fixed reason such as "client certificate was not provided", never a value).
function logEvents(provider, withListener) {
  const where = (ctx) => (withListener ? { listener: ctx.socket.encrypted ? 'mtls' : 'plain' } : {});
  const detail = (err) => (withListener && err.error_detail ? { error_detail: err.error_detail } : {});
  for (const name of ['grant.error', 'revocation.error', 'introspection.error']) {
    provider.on(name, (ctx, err) => {
      log(name, {
        route: ctx.oidc?.route, error: err.error, error_description: err.error_description, ...detail(err), ...where(ctx),
      });
    });
  }
  provider.on('server_error', (ctx, err) => log('server_error', { route: ctx.oidc?.route, message: err.message }));
  provider.on('grant.success', (ctx) => log('grant.success', { client_id: ctx.oidc?.client?.clientId, ...where(ctx) }));
}

// RFC 8705 §5: the metadata sends certificate-authenticated clients to the HTTPS listener. oidc-provider 9 no
// longer builds mtls_endpoint_aliases itself, so a post-middleware adds them to both discovery documents, from
// the provider's own route table (the paths stay right if the routes change).
function publishMtlsAliases(provider, mtlsOrigin) {
  const aliases = Object.fromEntries(
    [['token_endpoint', 'token'], ['revocation_endpoint', 'revocation'], ['introspection_endpoint', 'introspection']]
      .map(([metadata, route]) => [metadata, new URL(provider.pathFor(route), mtlsOrigin).href]),
  );
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'discovery' && ctx.status === 200 && ctx.body) {
      ctx.body.mtls_endpoint_aliases = aliases;
    }
  });
}

// The HTTPS listener: asks for a client certificate and verifies it against client_ca_file, but lets the
// handshake succeed either way (oidc-provider decides per client authentication method).
function createMtlsServer(mtls) {
  return createHttpsServer({
    cert: readFileSync(mtls.cert_file),
    key: readFileSync(mtls.key_file),
    ca: readFileSync(mtls.client_ca_file),
    requestCert: true,
    rejectUnauthorized: false,
  });
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address()));
  });
}

function shutdownOn(servers) {
  let closing = false;
  const stop = (signal) => {
    if (closing) return;
    closing = true;
    log('shutdown', { signal });
    let open = servers.length;
    for (const server of servers) {
      server.close(() => {
        open -= 1;
        if (open === 0) process.exit(0);
      });
      server.closeIdleConnections();
    }
    setTimeout(() => {
      for (const server of servers) server.closeAllConnections();
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
  // The same provider app also answers on an HTTPS listener when the config asks for mTLS.
  const mtlsServer = config.mtls ? createMtlsServer(config.mtls) : undefined;
  const mtlsAddress = mtlsServer ? await listen(mtlsServer, 0, host) : undefined;
  const mtlsUrl = mtlsAddress ? `https://${hostPart}:${mtlsAddress.port}` : undefined;

  const provider = new Provider(issuer, providerConfiguration(config));
  logEvents(provider, Boolean(mtlsServer));
  if (mtlsUrl) publishMtlsAliases(provider, mtlsUrl);
  const callback = provider.callback();
  server.on('request', callback);
  mtlsServer?.on('request', callback);
  exitWithParent(parentPid, shutdownOn(mtlsServer ? [server, mtlsServer] : [server]));

  process.stdout.write(
    `${JSON.stringify({
      ready: true,
      issuer,
      port: address.port,
      ...(mtlsAddress ? { mtls_url: mtlsUrl, mtls_port: mtlsAddress.port } : {}),
      pid: process.pid,
      oidc_provider: OIDC_PROVIDER_VERSION,
    })}\n`,
  );
}

main().catch((err) => {
  log('fatal', { message: err.message });
  process.exit(1);
});
