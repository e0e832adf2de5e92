/**
 * `host:port` addresses, as members and transports spell them: `127.0.0.1:9001`,
 * `node-2.internal:9001`, `[::1]:9001`.
 */
import { ConfigError } from '../errors.js';

/** A parsed address. `host` has no brackets. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** 4 for an IPv4 literal, 6 for an IPv6 literal (no brackets), 0 otherwise. */
export function ipVersion(host: string): 0 | 4 | 6 {
  if (IPV4.test(host)) return 4;
  if (host.includes(':') && /^[0-9a-fA-F:.]+$/.test(host) && isIpv6(host)) return 6;
  return 0;
}

function isIpv6(host: string): boolean {
  const parts = host.split('::');
  if (parts.length > 2) return false;
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groups(parts[0] as string);
  const tail = parts.length === 2 ? groups(parts[1] as string) : [];
  const all = [...head, ...tail];
  let count = 0;
  for (const [i, g] of all.entries()) {
    if (i === all.length - 1 && g.includes('.')) {
      if (!IPV4.test(g)) return false;
      count += 2;
    } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) count++;
    else return false;
  }
  return parts.length === 2 ? count < 8 : count === 8;
}

/** Parses `host:port`; null when it is not one. Port 0 is allowed (pick a free one). */
export function parseHostPort(address: string): HostPort | null {
  if (typeof address !== 'string') return null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s/]+)):(\d{1,5})$/.exec(address);
  if (m === null) return null;
  const host = (m[1] ?? m[2]) as string;
  const port = Number(m[3]);
  if (port > 65_535) return null;
  if (m[1] !== undefined && ipVersion(host) !== 6) return null;
  return { host, port };
}

/** Parses an address option or throws a ConfigError naming `field`. */
export function hostPortOption(field: string, address: unknown): HostPort {
  const parsed = typeof address === 'string' ? parseHostPort(address) : null;
  if (parsed === null) {
    throw new ConfigError(
      field,
      `must be "host:port" (e.g. "127.0.0.1:9001" or "[::1]:9001"), got ${JSON.stringify(address)}`,
    );
  }
  return parsed;
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return ipVersion(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The local address outgoing connections bind to by default: the listen host when it is an IP
 * literal other than a wildcard, so a node listening on 127.0.0.2 also dials from 127.0.0.2 and
 * packet filters can tell the nodes of one host apart. Null (the OS picks) otherwise.
 */
export function defaultLocalAddress(listenHost: string): string | null {
  if (ipVersion(listenHost) === 0) return null;
  if (/^0+(\.0+){3}$/.test(listenHost) || /^[0:]+$/.test(listenHost)) return null;
  return listenHost;
}
