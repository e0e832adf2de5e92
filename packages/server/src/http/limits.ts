/** The size limits the HTTP layer and the node agree on. */

/** Largest request body by default (a KV value, a JSON body), in bytes: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * Room a service's encoding may add around a body (a key, an idempotency key, framing): the
 * node accepts commands up to `DEFAULT_MAX_BODY_BYTES + COMMAND_HEADROOM_BYTES`, so a body the
 * HTTP layer accepts is never refused as a command.
 */
export const COMMAND_HEADROOM_BYTES = 64 * 1024;
