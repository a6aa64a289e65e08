import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConnectorDefinition, defaultValidators } from '../../src/config/definition.js';
import type { ConnectorDefinition } from '../../src/config/definition.js';
import { validateMappingDefinition } from '../../src/config/mapping-definition.js';
import {
  checkUrlToItemResolvers,
  resolveUrlToItemId,
  type UrlToItemResolver,
} from '../../src/config/mapping-resolvers.js';
import type { SchemaProperty } from '../../src/config/model.js';
import { silentLogger } from '../../src/log.js';
import { createMapper } from '../../src/mapping/mapper.js';
import type { SecretProvider } from '../../src/secrets/types.js';
import { createSource } from '../../src/sources/index.js';

const root = process.cwd();
const schema: SchemaProperty[] = [
  { name: 'title', type: 'string', isRetrievable: true, labels: ['title'] },
  { name: 'url', type: 'string', isRetrievable: true, labels: ['url'] },
];
const acl = { onUnresolved: 'reject', rules: [{ access: 'grant', type: 'externalGroup', value: 'payments' }] };
const resolver = (urlPattern: string, itemId = '{ticketId}', baseUrls = ['https://tasks.contoso.com']) => ({
  itemId,
  priority: 1,
  urlMatchInfo: { baseUrls, urlPattern },
});
const ROUND_TRIP = '/tickets/(?<ticketId>[A-Za-z0-9_-]+)(?:[/?#]|$)';
const check = (r: unknown, mapping: Record<string, unknown>) =>
  checkUrlToItemResolvers([r], { properties: { title: 'title' }, acl, ...mapping }, schema);

describe('resolveUrlToItemId applies resolvers as Graph documents them', () => {
  const resolvers: UrlToItemResolver[] = [
    {
      itemId: 'doc-{slug}',
      priority: 2,
      urlMatchInfo: { baseUrls: ['https://x.com/docs'], urlPattern: '/(?<slug>[^/]+)' },
    },
    { itemId: '{id}', priority: 1, urlMatchInfo: { baseUrls: ['https://x.com'], urlPattern: '/items/(?<id>\\d+)' } },
  ];

  it('matches the base URL as a prefix and urlPattern against the rest; itemId takes the named captures', () => {
    expect(resolveUrlToItemId('https://x.com/items/42', resolvers)).toEqual({ itemId: '42', resolverIndex: 1 });
    expect(resolveUrlToItemId('https://x.com/docs/intro', resolvers)).toEqual({
      itemId: 'doc-intro',
      resolverIndex: 0,
    });
    expect(resolveUrlToItemId('HTTPS://X.COM/items/7', resolvers)?.itemId).toBe('7');
  });

  it('tries resolvers by priority, and a base URL only up to a boundary', () => {
    const both: UrlToItemResolver[] = [
      { ...resolvers[0]!, priority: 5, itemId: 'low-{id}', urlMatchInfo: { ...resolvers[1]!.urlMatchInfo } },
      resolvers[1]!,
    ];
    expect(resolveUrlToItemId('https://x.com/items/9', both)?.itemId).toBe('9');
    expect(resolveUrlToItemId('https://x.com.evil.net/items/9', resolvers)).toBeUndefined();
    expect(resolveUrlToItemId('https://other.com/items/9', resolvers)).toBeUndefined();
  });

  it('does not resolve when itemId names a group the pattern did not capture', () => {
    const r = [{ ...resolvers[1]!, itemId: '{id}-{missing}' }];
    expect(resolveUrlToItemId('https://x.com/items/42', r)).toBeUndefined();
  });

  it('reads the pattern against the part after the base URL, as Microsoft samples write it', () => {
    const blog = [
      {
        itemId: '{slug}',
        priority: 1,
        urlMatchInfo: { baseUrls: ['https://blog.example.com'], urlPattern: '/(?<slug>[^/]+)' },
      },
    ];
    expect(resolveUrlToItemId('https://blog.example.com/2-rules-play-spfx/', blog)?.itemId).toBe('2-rules-play-spfx');
    // The literal "matched towards the URL" reading would capture the host.
    expect(
      resolveUrlToItemId('https://blog.example.com/2-rules-play-spfx/', blog, { patternInput: 'wholeUrl' })?.itemId,
    ).toBe('blog.example.com');
  });
});

describe('validate: a resolver must build the ids the mapping produces (resolver/id mismatch class)', () => {
  const mapping = { id: '{ticketId}', url: 'https://tasks.contoso.com/tickets/{ticketId}' };

  it("accepts a resolver that round-trips, and one written like Microsoft's markdown sample", () => {
    expect(check(resolver(ROUND_TRIP), mapping)).toEqual([]);
    expect(
      check(resolver('/(?<slug>[^/]+)', '{slug}', ['https://blog.example.com']), {
        id: '{slug}',
        url: 'https://blog.example.com/{slug}',
      }),
    ).toEqual([]);
  });

  it('warns when the mapping uses another field for the id, naming both templates', () => {
    const [w] = check(resolver(ROUND_TRIP), { id: '{key}', url: mapping.url });
    expect(w).toMatchObject({ severity: 'warning', path: 'connection.activitySettings.urlToItemResolvers[0].itemId' });
    expect(w!.message).toContain('itemId "{ticketId}"');
    expect(w!.message).toContain('mapping.id "{key}"');
    expect(w!.message).toContain('mapping.url "https://tasks.contoso.com/tickets/{ticketId}"');
    expect(w!.message).toContain('the id uses {key}, the URL carries {ticketId}');
    expect(w!.fix).toContain('(?<ticketId>[A-Za-z0-9_-]+)');
  });

  it('warns when the mapping encodes every id (its literal text needs encoding)', () => {
    const [w] = check(resolver('/tickets/(?<team>[^/]+)/(?<ticketId>[^/?#]+)', '{team}/{ticketId}'), {
      id: '{team}/{ticketId}',
      url: 'https://tasks.contoso.com/tickets/{team}/{ticketId}',
    });
    expect(w!.message).toContain('the mapping encodes every id');
  });

  it('warns when a partial capture resolves a URL to another item (the old sample pattern)', () => {
    const [w] = check(resolver('/tickets/(?<ticketId>[A-Za-z0-9]+)'), mapping);
    expect(w!.message).toMatch(/resolves to "ab".*item id "ab-0_c"/);
    const [space] = check(resolver('/tickets/(?<ticketId>[A-Za-z0-9_-]+)'), mapping);
    expect(space!.message).toMatch(/ab%2000 resolves to "ab"/);
  });

  it("warns when the resolver matches none of the mapping's URLs", () => {
    const [w] = check(resolver(ROUND_TRIP, '{ticketId}', ['https://tickets.contoso.com']), mapping);
    expect(w!.message).toContain('matches none of the URLs the mapping makes');
  });

  it('uses the url-labelled property when mapping.url is not set; skips modules and field-valued urls', () => {
    expect(check(resolver(ROUND_TRIP), { id: '{key}', properties: { title: 'title', url: mapping.url } })).toHaveLength(
      1,
    );
    expect(check(resolver(ROUND_TRIP), { id: '{key}', properties: { title: 'title', url: 'link' } })).toEqual([]);
    expect(checkUrlToItemResolvers([resolver(ROUND_TRIP)], { module: './m.js', acl }, schema)).toEqual([]);
  });

  it('is part of validate (connector definition checks)', async () => {
    const def = JSON.parse(readFileSync(join(root, 'connector.json'), 'utf8')) as ConnectorDefinition & {
      mapping: { id: string };
    };
    def.mapping.id = '{title}';
    const problems = validateConnectorDefinition(def, defaultValidators);
    expect(problems.filter((p) => p.path.includes('urlToItemResolvers'))).toEqual([
      expect.objectContaining({
        severity: 'warning',
        path: 'connection.activitySettings.urlToItemResolvers[0].itemId',
      }),
    ]);
    expect(validateMappingDefinition(def.mapping, schema, 'mapping')).not.toContainEqual(
      expect.objectContaining({ path: expect.stringContaining('urlToItemResolvers') }),
    );
  });
});

describe('the shipped sample: every item is reachable from its URL through the resolvers', () => {
  it("resolves each sample record's mapped url to exactly its mapped item id", async () => {
    const connector = JSON.parse(readFileSync(join(root, 'connector.json'), 'utf8')) as ConnectorDefinition;
    const resolvers = connector.connection.activitySettings!.urlToItemResolvers!;
    expect(resolvers.length).toBeGreaterThan(0);
    const noSecrets: SecretProvider = {
      get: () => Promise.reject(new Error('no secrets in this test')),
      invalidate: () => {},
      describe: () => 'none',
    };
    const source = createSource(connector.source, { secrets: noSecrets, logger: silentLogger, baseDir: root });
    const mapper = await createMapper(connector.mapping, connector.schema.properties, { baseDir: root, tenantId: 't' });
    const ids = new Set<string>();
    let count = 0;
    for await (const record of source.read()) {
      const r = mapper.map(record);
      if (!r.ok) throw new Error(r.reason.message);
      ids.add(r.item.id);
      const url = r.item.properties.url as string;
      expect(resolveUrlToItemId(url, resolvers)?.itemId, url).toBe(r.item.id);
      // Whichever way Graph reads urlPattern (after the base URL or the whole URL), the sample resolves the same.
      expect(resolveUrlToItemId(url, resolvers, { patternInput: 'wholeUrl' })?.itemId, url).toBe(r.item.id);
      // A link shared with a query string or a fragment still names the item.
      expect(resolveUrlToItemId(`${url}?tab=history#c2`, resolvers)?.itemId, url).toBe(r.item.id);
      count++;
    }
    expect(count).toBeGreaterThanOrEqual(300);
    expect(ids.size).toBe(count);
  });
});
