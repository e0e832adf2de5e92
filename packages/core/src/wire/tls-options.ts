/**
 * TLS settings shared by the network transports: PEM from buffers or files, validated when the
 * transport is created so that a missing file or a bad field fails at start-up, naming the
 * field, instead of at the first connection. The adapter reads the files (it brings the
 * `readFile`) and checks that the material is usable (node:tls).
 */
import { ConfigError } from '../errors.js';
import { utf8Encode } from '../utf8.js';

type Pem = string | Uint8Array;

/**
 * TLS for every connection, accepted and dialed, mutual by default. Give each of cert, key
 * (and ca) inline or as a file.
 */
export interface TlsOptions {
  /** This node's certificate chain, PEM. Or `certFile`. */
  readonly cert?: Pem;
  readonly certFile?: string;
  /** The certificate's private key, PEM. Or `keyFile`. */
  readonly key?: Pem;
  readonly keyFile?: string;
  /** Passphrase of an encrypted key. */
  readonly passphrase?: string;
  /**
   * The CA (or CAs) that signed the cluster's certificates, PEM. Or `caFile`. Default: the
   * platform's public CAs, which is rarely what a private cluster wants.
   */
  readonly ca?: Pem | readonly Pem[];
  readonly caFile?: string;
  /**
   * Require a certificate signed by `ca` from every node that connects (mutual TLS). Default
   * true: without it anyone who can reach the port can connect (then use a `secret`).
   */
  readonly requireClientCert?: boolean;
  /**
   * Check that a dialed peer's certificate names the host of its address (a DNS name or an IP
   * address in its subjectAltName). Default true.
   */
  readonly verifyHostname?: boolean;
  /** Lowest protocol version accepted. Default 'TLSv1.2'. */
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** {@link TlsOptions} loaded: PEM bytes and every default applied. */
export interface ResolvedTlsOptions {
  readonly cert: Uint8Array;
  readonly key: Uint8Array;
  readonly ca: readonly Uint8Array[] | null;
  readonly passphrase: string | null;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly requireClientCert: boolean;
  readonly verifyHostname: boolean;
}

const TLS_KEYS = [
  'cert',
  'certFile',
  'key',
  'keyFile',
  'passphrase',
  'ca',
  'caFile',
  'requireClientCert',
  'verifyHostname',
  'minVersion',
];

/**
 * Validates `tls` and loads its files with `readFile`; throws a ConfigError naming the field
 * (`tls.certFile`...) for an unknown key, a missing or unreadable file, or a bad value.
 */
export function resolveTlsOptions(
  tls: TlsOptions,
  readFile: (path: string) => Uint8Array,
): ResolvedTlsOptions {
  if (typeof tls !== 'object' || tls === null) throw new ConfigError('tls', 'must be an object');
  for (const key of Object.keys(tls)) {
    if (!TLS_KEYS.includes(key)) {
      throw new ConfigError(`tls.${key}`, `unknown option (valid: ${TLS_KEYS.join(', ')})`);
    }
  }
  const pem = (field: string, inline: unknown, file: unknown): Uint8Array | null => {
    if (inline !== undefined && file !== undefined) {
      throw new ConfigError(`tls.${field}`, `give ${field} or ${field}File, not both`);
    }
    if (file !== undefined) {
      if (typeof file !== 'string' || file === '') {
        throw new ConfigError(`tls.${field}File`, 'must be a file path');
      }
      try {
        return readFile(file);
      } catch (err) {
        throw new ConfigError(
          `tls.${field}File`,
          `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      }
    }
    if (inline === undefined) return null;
    if (typeof inline === 'string') return utf8Encode(inline);
    if (inline instanceof Uint8Array) return inline;
    throw new ConfigError(`tls.${field}`, 'must be PEM text (a string or a Uint8Array)');
  };
  const cert = pem('cert', tls.cert, tls.certFile);
  if (cert === null) throw new ConfigError('tls.cert', 'is required (or tls.certFile)');
  const key = pem('key', tls.key, tls.keyFile);
  if (key === null) throw new ConfigError('tls.key', 'is required (or tls.keyFile)');
  let ca: Uint8Array[] | null;
  if (Array.isArray(tls.ca)) {
    if (tls.caFile !== undefined) throw new ConfigError('tls.ca', 'give ca or caFile, not both');
    ca = tls.ca.map((c, i) => {
      const one = pem(`ca[${i}]`, c, undefined);
      if (one === null) throw new ConfigError(`tls.ca[${i}]`, 'must be PEM text');
      return one;
    });
  } else {
    const one = pem('ca', tls.ca, tls.caFile);
    ca = one === null ? null : [one];
  }
  if (
    tls.minVersion !== undefined &&
    tls.minVersion !== 'TLSv1.2' &&
    tls.minVersion !== 'TLSv1.3'
  ) {
    throw new ConfigError('tls.minVersion', "must be 'TLSv1.2' or 'TLSv1.3'");
  }
  for (const flag of ['requireClientCert', 'verifyHostname'] as const) {
    if (tls[flag] !== undefined && typeof tls[flag] !== 'boolean') {
      throw new ConfigError(`tls.${flag}`, 'must be a boolean');
    }
  }
  if (tls.passphrase !== undefined && typeof tls.passphrase !== 'string') {
    throw new ConfigError('tls.passphrase', 'must be a string');
  }
  return {
    cert,
    key,
    ca,
    passphrase: tls.passphrase ?? null,
    minVersion: tls.minVersion ?? 'TLSv1.2',
    requireClientCert: tls.requireClientCert ?? true,
    verifyHostname: tls.verifyHostname ?? true,
  };
}
