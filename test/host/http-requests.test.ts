import { describe, expect, it } from 'vitest';
import {
  MAX_BODY_BYTES,
  RequestError,
  parseJsonBody,
  parseReplayRequest,
  parseResyncRequest,
} from '../../src/host/http.js';

function problemsOf(fn: () => unknown): { status: number; problems: string[] } {
  try {
    fn();
  } catch (err) {
    if (err instanceof RequestError) return { status: err.status, problems: err.problems };
    throw err;
  }
  throw new Error('expected a RequestError');
}

describe('HTTP request bodies', () => {
  it('accepts the documented resync forms with defaults', () => {
    expect(parseResyncRequest({})).toEqual({ mode: 'full', force: false });
    expect(parseResyncRequest({ mode: 'incremental' })).toEqual({ mode: 'incremental', force: false });
    expect(parseResyncRequest({ mode: 'items', itemIds: ['TSP1', 'TSP2'], force: true })).toEqual({
      mode: 'items',
      itemIds: ['TSP1', 'TSP2'],
      force: true,
    });
  });

  it('reports every problem of a bad resync body at once, naming the fields', () => {
    const { status, problems } = problemsOf(() => parseResyncRequest({ mode: 'everything', force: 'yes', extra: 1 }));
    expect(status).toBe(400);
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/unknown field "extra"/);
    expect(problems.join('\n')).toMatch(/"mode" must be one of full, incremental, acl, items/);
    expect(problems.join('\n')).toMatch(/"force" must be true or false/);
  });

  it('needs item ids for mode items, and only there', () => {
    expect(problemsOf(() => parseResyncRequest({ mode: 'items' })).problems[0]).toMatch(/needs "itemIds"/);
    expect(problemsOf(() => parseResyncRequest({ mode: 'full', itemIds: ['a'] })).problems[0]).toMatch(
      /only valid with mode "items"/,
    );
  });

  it('rejects bodies that are not JSON objects, the wrong content type, and oversized bodies', () => {
    expect(problemsOf(() => parseJsonBody('{not json', 'application/json')).status).toBe(400);
    expect(problemsOf(() => parseJsonBody('[1,2]', 'application/json')).problems[0]).toMatch(/must be a JSON object/);
    expect(problemsOf(() => parseJsonBody('{}', 'text/plain')).status).toBe(415);
    expect(problemsOf(() => parseJsonBody('x'.repeat(MAX_BODY_BYTES + 1), 'application/json')).status).toBe(413);
    expect(parseJsonBody('', undefined)).toEqual({});
  });

  it('validates replay requests', () => {
    expect(parseReplayRequest({ all: true })).toEqual({ all: true });
    expect(parseReplayRequest({ crawlId: 'c1' })).toEqual({ all: false, crawlId: 'c1' });
    expect(problemsOf(() => parseReplayRequest({})).problems[0]).toMatch(/say what to replay/);
  });
});
