/** Request bodies: every body arrives as bytes (the app's parser); JSON ones are validated. */
import type { z } from 'zod';
import { BadRequestError } from './http-errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The body as bytes (an absent body is empty). */
export function bodyBytes(body: unknown): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (body === undefined || body === null) return new Uint8Array(0);
  throw new BadRequestError('the body must be bytes');
}

/** The body parsed as JSON and checked against `schema`; 400 saying what is wrong otherwise.
 *  An empty body is `{}` when `emptyIsObject`. */
export function jsonBody<T>(body: unknown, schema: z.ZodType<T>, emptyIsObject = false): T {
  const bytes = bodyBytes(body);
  let value: unknown;
  if (bytes.length === 0 && emptyIsObject) value = {};
  else {
    try {
      value = JSON.parse(decoder.decode(bytes));
    } catch {
      throw new BadRequestError('the body must be JSON');
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadRequestError(
      `${issue?.path.join('.') || 'the body'}: ${issue?.message ?? 'is invalid'}`,
    );
  }
  return parsed.data;
}
