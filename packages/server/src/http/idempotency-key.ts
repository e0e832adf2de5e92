/** The `Idempotency-Key` request header, checked. */
import { MAX_IDEMPOTENCY_KEY_BYTES } from '../node/service-command.js';
import { BadRequestError } from './http-errors.js';

const encoder = new TextEncoder();

/**
 * The idempotency key of a request (`req.headers['idempotency-key']`), or null without one.
 * 400 for an empty key or one longer than {@link MAX_IDEMPOTENCY_KEY_BYTES} bytes of UTF-8.
 */
export function idempotencyKeyOf(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined || key.length === 0) throw new BadRequestError('Idempotency-Key is empty');
  if (encoder.encode(key).length > MAX_IDEMPOTENCY_KEY_BYTES) {
    throw new BadRequestError(
      `Idempotency-Key is longer than ${MAX_IDEMPOTENCY_KEY_BYTES} bytes of UTF-8`,
    );
  }
  return key;
}
