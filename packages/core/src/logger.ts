/**
 * Logger hook. Pino-shaped, so a pino logger can be passed in directly. There is no global
 * logger: each node gets its own (use `child({ nodeId })`).
 */

/** A structured logger. `fields` first, message second, as pino does. */
export interface Logger {
  debug(fields: Record<string, unknown>, msg?: string): void;
  info(fields: Record<string, unknown>, msg?: string): void;
  warn(fields: Record<string, unknown>, msg?: string): void;
  error(fields: Record<string, unknown>, msg?: string): void;
  child?(bindings: Record<string, unknown>): Logger;
}

const noop = (): void => {};

/** The default logger: discards everything. */
export const noopLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** `logger.child(bindings)` when the logger supports it, otherwise the logger itself. */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  return logger.child ? logger.child(bindings) : logger;
}
