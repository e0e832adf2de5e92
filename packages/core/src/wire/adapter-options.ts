/**
 * Checks every network transport adapter makes of its own options, and the error it reports
 * when it cannot listen, so that both transports word them alike.
 */
import { ConfigError, RaftError } from '../errors.js';
import { formatHostPort, type HostPort, parseHostPort } from './address.js';

/** Throws a ConfigError naming the first key of `options` that is not in `known`. */
export function checkOptionKeys(options: object, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options', 'must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new ConfigError(key, `unknown option (valid options: ${known.join(', ')})`);
    }
  }
}

/** `advertise`: a `host:port` with a real port, or undefined. */
export function advertiseOption(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const hp = typeof value === 'string' ? parseHostPort(value) : null;
  if (hp === null || hp.port === 0) {
    throw new ConfigError(
      'advertise',
      `must be "host:port" with a port, got ${JSON.stringify(value)}`,
    );
  }
  return value as string;
}

/** `localAddress`: an address, null (the OS chooses), or undefined for `fallback`. */
export function localAddressOption(value: unknown, fallback: string | null): string | null {
  if (value === undefined) return fallback;
  if (value !== null && (typeof value !== 'string' || value === '')) {
    throw new ConfigError('localAddress', 'must be an IP address or null');
  }
  return value;
}

/** An integer option in [min, max], or `fallback` when undefined. */
export function intOption(
  field: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(field, `must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

/** The UNAVAILABLE error of a listener that failed on `where`, with a hint for common codes. */
export function listenError(where: string, err: unknown): RaftError {
  const code = (err as { code?: unknown } | null)?.code;
  const hint =
    code === 'EADDRINUSE'
      ? 'the address is in use (is another node or process running on that port?)'
      : code === 'EADDRNOTAVAIL'
        ? 'no local interface has that address'
        : code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : err instanceof Error
            ? err.message
            : String(err);
  return new RaftError('UNAVAILABLE', `cannot listen on ${where}: ${hint}`, { cause: err });
}

/** What {@link listenOn} needs of a `node:net`, `node:tls` or `node:http` server. */
export interface ListenableServer {
  listen(options: { host: string; port: number; exclusive: boolean }): unknown;
  address(): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'error' | 'listening', listener: (err: Error) => void): unknown;
  off(event: 'error' | 'listening', listener: (err: Error) => void): unknown;
}

/**
 * Starts `server` listening on `at` and resolves with the address it listens on (the real
 * port when `at.port` is 0); rejects with {@link listenError}. Later errors of the listener are
 * logged through `onLaterError`.
 */
export function listenOn(
  server: ListenableServer,
  at: HostPort,
  onLaterError: (err: Error) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(listenError(formatHostPort(at.host, at.port), err));
    };
    const onListening = () => {
      server.off('error', onError);
      server.on('error', onLaterError);
      const bound = server.address() as { port?: unknown } | null;
      const port = typeof bound?.port === 'number' ? bound.port : at.port;
      resolve(formatHostPort(at.host, port));
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host: at.host, port: at.port, exclusive: true });
  });
}
