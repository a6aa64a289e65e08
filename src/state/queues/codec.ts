/**
 * How our queue messages travel: JSON text, base64-encoded — the Functions host's default `messageEncoding`, so the
 * same queue serves the queue trigger and the CLI's local worker.
 */

export function encodeQueueMessage(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** Decode a queue message: base64 (the host default) or, tolerated, plain text. */
export function decodeQueueMessage(text: string): string {
  const t = text.trim();
  if (t.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(t)) {
    const decoded = Buffer.from(t, 'base64').toString('utf8');
    if (Buffer.from(decoded, 'utf8').toString('base64') === t) return decoded;
  }
  return text;
}
