/**
 * Regression (bug class: an HTTP trigger reads an unbounded body). The 64 KiB cap was checked against the
 * declared `content-length` and only after the whole body had been read: a streamed body without a length (or
 * with a length that lies) was buffered in full before being refused. A body without `application/json` was
 * parsed anyway. The cap now holds while streaming, and such a body gets 415 — before the runtime is touched.
 *
 * Real handlers and real `HttpRequest`s over a native `Request` with a streaming body (what the Functions
 * library builds when HTTP streaming is on), counting the bytes the handler pulled.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { createHandlers } from '../../src/host/handlers.js';

const handlers = createHandlers(async () => {
  throw new Error('the runtime must not be reached for a refused body');
});
const ctx = () => new InvocationContext({ functionName: 'resync', invocationId: 'hostile', logHandler: () => {} });

/** A body of `total` bytes of JSON-ish text, produced lazily in 4 KiB chunks; `pulled` counts what was read. */
function streamingBody(total: number) {
  const counter = { pulled: 0 };
  const chunk = new TextEncoder().encode('{"itemIds":["' + 'x'.repeat(4096 - 14));
  const filler = new TextEncoder().encode('x'.repeat(4096));
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (sent >= total) return controller.close();
        const c = sent === 0 ? chunk : filler;
        sent += c.byteLength;
        counter.pulled += c.byteLength;
        controller.enqueue(c);
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, counter };
}

function streamed(stream: ReadableStream<Uint8Array>, headers: Record<string, string>): HttpRequest {
  const nativeRequest = new Request('http://localhost:7071/api/resync', {
    method: 'POST',
    headers,
    body: stream,
    duplex: 'half',
  });
  return new HttpRequest({ nativeRequest } as unknown as ConstructorParameters<typeof HttpRequest>[0]);
}

describe('HTTP trigger bodies', () => {
  it('a streamed body without content-length is cut off at 64 KiB with 413, not read to the end', async () => {
    const { stream, counter } = streamingBody(64 * 1024 * 1024);
    const res = await handlers.resync(streamed(stream, { 'content-type': 'application/json' }), ctx());
    expect(res.status).toBe(413);
    expect(JSON.stringify(res.jsonBody)).toMatch(/65536/);
    expect(counter.pulled).toBeLessThanOrEqual(64 * 1024 + 8 * 1024);
  });

  it('a content-length that lies (declares 20 bytes, sends 1 MiB) does not lift the cap', async () => {
    const { stream, counter } = streamingBody(1024 * 1024);
    const res = await handlers.resync(
      streamed(stream, { 'content-type': 'application/json', 'content-length': '20' }),
      ctx(),
    );
    expect(res.status).toBe(413);
    expect(counter.pulled).toBeLessThanOrEqual(64 * 1024 + 8 * 1024);
  });

  it('a body without a content type, or with a non-JSON one, gets 415 and is not parsed', async () => {
    for (const headers of [
      {} as Record<string, string>,
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/x-www-form-urlencoded' },
    ]) {
      const req = new HttpRequest({
        method: 'POST',
        url: 'http://localhost:7071/api/resync',
        headers,
        // Bytes, not a string: a string body would get text/plain from the Request constructor.
        body: { bytes: new TextEncoder().encode('{"mode":"full"}') },
      });
      const res = await handlers.resync(req, ctx());
      expect(res.status, JSON.stringify(headers)).toBe(415);
      expect(JSON.stringify(res.jsonBody)).toMatch(/content-type must be application\/json/);
    }
  });

  it('an empty body needs no content type; a JSON body with one is read', async () => {
    const empty = new HttpRequest({ method: 'POST', url: 'http://localhost:7071/api/provision' });
    // Accepted as far as the body goes: the handler then asks for the runtime (which this test refuses: 500).
    expect((await handlers.provisionHttp(empty, ctx())).status).toBe(500);
    const json = new HttpRequest({
      method: 'POST',
      url: 'http://localhost:7071/api/resync',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: { string: '{"mode":"full"}' },
    });
    expect((await handlers.resync(json, ctx())).status).toBe(500);
  });
});
