import { createHmac, randomBytes } from 'node:crypto';
import type { WireCrypto } from '@raft/core/wire';

/** HMAC-SHA256 and random bytes from node:crypto, for the handshake. */
export const nodeCrypto: WireCrypto = {
  hmacSha256: (key, data) => new Uint8Array(createHmac('sha256', key).update(data).digest()),
  randomBytes: (length) => new Uint8Array(randomBytes(length)),
};
