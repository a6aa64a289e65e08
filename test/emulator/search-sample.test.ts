/**
 * On the Contoso Tasks sample, crawled by the connector into the emulator, Graph's search API (as each user of the
 * sample's directory, signed in with the password grant) answers exactly the visibility the admin search computes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, SAMPLE, type Stack } from '../support/stack.js';
import { graphClient, trust, userCredential, type Rec, type Tls } from './helpers.js';

let stack: Stack;
let tls: Tls;

beforeAll(async () => {
  stack = await startStack({
    // ACLs do not depend on attachments; leaving them out keeps OCR out of this test.
    editDefinition: (def) => {
      delete def.mapping.attachments;
    },
  });
  tls = trust(stack.emu);
  const { job } = await stack.crawl({ mode: 'full' }, 16);
  expect(job?.status, job?.error).toBe('completed');
}, 240_000);
afterAll(async () => {
  await stack?.close();
  await tls?.dispatcher.close();
});

describe('search API vs admin search on the sample', () => {
  it('every user of the sample directory finds exactly the items the admin search says they may see', async () => {
    const users = (
      JSON.parse(await readFile(join(SAMPLE, 'directory.json'), 'utf8')) as { users: { userPrincipalName: string }[] }
    ).users.map((u) => u.userPrincipalName);
    const cid = stack.rt.definition.connection.id;
    const all = (await stack.admin<{ value: Rec[] }>(`connections/${cid}/items`)).value.length;
    expect(all).toBe(360);
    const counts: number[] = [];
    for (const upn of users) {
      const client = graphClient(stack.emu, tls, userCredential(stack.emu, tls, upn));
      const viaApi: string[] = [];
      for (let from = 0; ; ) {
        const res = await client.api('/search/query').post({
          requests: [
            {
              entityTypes: ['externalItem'],
              contentSources: [`/external/connections/${cid}`],
              query: { queryString: '*' },
              from,
              size: 500,
            },
          ],
        });
        const c = res.value[0].hitsContainers[0];
        viaApi.push(...((c.hits ?? []) as Rec[]).map((h) => String(h.hitId)));
        from = viaApi.length;
        if (!c.moreResultsAvailable) break;
      }
      const admin = await stack.admin<{ value: Rec[] }>(`search?connectionId=${cid}&user=${encodeURIComponent(upn)}`);
      expect(viaApi.sort(), upn).toEqual(admin.value.map((v) => String(v.id)).sort());
      counts.push(viaApi.length);
    }
    // The ACLs really differ between users (not all-or-nothing).
    expect(new Set(counts).size).toBeGreaterThan(3);
    expect(Math.max(...counts)).toBeLessThan(all);
  });
});
