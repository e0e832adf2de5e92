/** An error's message for a log line, with its `code` (ECONNREFUSED...) when it has one. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code)
      ? `${err.message} (${code})`
      : err.message;
  }
  return String(err);
}
