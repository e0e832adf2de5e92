/**
 * The transport's TLS settings as node:tls takes them, checked once at creation: a key that
 * does not match its certificate, or PEM that does not parse, fails there with a ConfigError.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ConfigError } from '@raft/core';
import { type ResolvedTlsOptions, resolveTlsOptions, type TlsOptions } from '@raft/core/wire';

/** Loaded TLS settings, ready for tls.createServer / tls.connect. */
export interface TlsContext {
  readonly context: SecureContextOptions;
  readonly options: ResolvedTlsOptions;
}

export function loadTls(tls: TlsOptions): TlsContext {
  const options = resolveTlsOptions(tls, (path) => readFileSync(path));
  const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const context: SecureContextOptions = {
    cert: buf(options.cert),
    key: buf(options.key),
    minVersion: options.minVersion,
    ...(options.passphrase === null ? {} : { passphrase: options.passphrase }),
    ...(options.ca === null ? {} : { ca: options.ca.map(buf) }),
  };
  try {
    createSecureContext(context);
  } catch (err) {
    throw new ConfigError(
      'tls',
      `the certificate, key or CA is not usable: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return { context, options };
}
