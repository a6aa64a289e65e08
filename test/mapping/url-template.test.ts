import { describe, expect, it } from 'vitest';
import type { MappingDefinition } from '../../src/config/mapping-definition.js';
import { validateMappingDefinition } from '../../src/config/mapping-definition.js';
import {
  encodeUriComponentStrict,
  encodeUriReserved,
  parseTemplate,
  whyNotAbsoluteHttpUrl,
} from '../../src/config/mapping-template.js';
import type { SchemaProperty } from '../../src/config/model.js';
import type { MapResult } from '../../src/mapping/mapper.js';
import { createMapper } from '../../src/mapping/mapper.js';

const schema: SchemaProperty[] = [
  { name: 'title', type: 'string', isRetrievable: true, labels: ['title'] },
  { name: 'url', type: 'string', isRetrievable: true, labels: ['url'] },
  { name: 'iconUrl', type: 'string', isRetrievable: true, labels: ['iconUrl'] },
];
const acl: MappingDefinition['acl'] = {
  onUnresolved: 'reject',
  rules: [{ access: 'grant', type: 'externalGroup', value: 'payments' }],
};

async function mapUrl(url: string, data: Record<string, unknown>): Promise<MapResult> {
  const mapper = await createMapper({ id: '{n}', properties: { title: 'title' }, url, acl }, schema, {
    baseDir: process.cwd(),
  });
  return mapper.map({ key: 'R1', data: { n: 'N1', title: 'x', ...data } });
}
async function urlOf(url: string, data: Record<string, unknown>): Promise<string> {
  const r = await mapUrl(url, data);
  if (!r.ok) throw new Error(r.reason.message);
  return r.item.properties.url as string;
}
const errorsAt = (def: Record<string, unknown>, path: string) =>
  validateMappingDefinition({ id: '{n}', properties: { title: 'title' }, acl, ...def }, schema, 'mapping').filter(
    (p) => p.severity === 'error' && p.path === path,
  );

describe('URL templates percent-encode their values (unencoded URL value class)', () => {
  const template = 'https://tasks.example.com/tickets/{ticketId}';

  it('T 0046: a space is encoded, not stored raw', async () => {
    expect(await urlOf(template, { ticketId: 'T 0046' })).toBe('https://tasks.example.com/tickets/T%200046');
  });

  it('T/0045: a slash stays inside its path segment', async () => {
    const url = await urlOf(template, { ticketId: 'T/0045' });
    expect(url).toBe('https://tasks.example.com/tickets/T%2F0045');
    expect(new URL(url).pathname.split('/')).toEqual(['', 'tickets', 'T%2F0045']);
  });

  it('encodes everything but A-Z a-z 0-9 - . _ ~ in a {field} value', async () => {
    expect(await urlOf(template, { ticketId: "a?b#c&d=e+f%g!*'()é" })).toBe(
      'https://tasks.example.com/tickets/a%3Fb%23c%26d%3De%2Bf%25g%21%2A%27%28%29%C3%A9',
    );
    expect(await urlOf(template, { ticketId: 'Tsk-1_a.b~c' })).toBe('https://tasks.example.com/tickets/Tsk-1_a.b~c');
  });

  it('{+path} keeps a path value whole, encoding only what a URL may not contain', async () => {
    expect(await urlOf('https://files.contoso.com/{+path}', { path: 'docs/2025/a b.pdf' })).toBe(
      'https://files.contoso.com/docs/2025/a%20b.pdf',
    );
    expect(await urlOf('https://files.contoso.com/{+path}', { path: 'a%20b/50%/ü' })).toBe(
      'https://files.contoso.com/a%20b/50%25/%C3%BC',
    );
  });

  it('{+link} takes a whole URL from the record, and the url rule still checks it', async () => {
    expect(await urlOf('{+link}', { link: 'https://crm.contoso.com/case?id=7#notes' })).toBe(
      'https://crm.contoso.com/case?id=7#notes',
    );
    for (const link of ['javascript:alert(1)', 'not a url', 'https:///nohost', 'ftp://files.contoso.com/a']) {
      const r = await mapUrl('{+link}', { link });
      expect(r.ok, link).toBe(false);
      if (!r.ok) {
        expect(r.reason).toMatchObject({ field: 'url', rule: 'url' });
        expect(r.reason.message).toContain('is not a valid absolute http(s) URL');
      }
    }
  });

  it('iconUrl follows the same rule', async () => {
    const mapper = await createMapper(
      { id: '{n}', properties: { title: 'title' }, iconUrl: 'https://cdn.contoso.com/icons/{kind}.png', acl },
      schema,
      { baseDir: process.cwd() },
    );
    const r = mapper.map({ key: 'R1', data: { n: 'N1', title: 'x', kind: 'bug report' } });
    expect(r.ok && r.item.properties.iconUrl).toBe('https://cdn.contoso.com/icons/bug%20report.png');
  });

  it('leaves non-URL templates alone (ids and properties are not URL-encoded)', async () => {
    const mapper = await createMapper({ id: '{n}', properties: { title: '{a} / {b}' }, acl }, schema, {
      baseDir: process.cwd(),
    });
    const r = mapper.map({ key: 'R1', data: { n: 'N 1', a: 'x y', b: 'z/w' } });
    expect(r.ok && r.item.properties.title).toBe('x y / z/w');
    expect(r.ok && r.sourceId).toBe('N 1');
  });
});

describe('the url rule checks the URL as written', () => {
  it.each([
    ['https://tasks.example.com/tickets/T 0046', 'a space at position 35'],
    ['https://tasks.example.com/tickets/T\u00e9', '"é" at position 35'],
    ['https://tasks.example.com/%zz', '"%" at position 26 does not start a %XX escape'],
    ['https://tasks.example.com/\t', 'a control character'],
    ['ftp://tasks.example.com/x', 'does not start with http:// or https://'],
    ['tasks.example.com/x', 'does not start with http:// or https://'],
    ['https:///nohost', 'does not start with http:// or https:// and a host'],
    ['https://exa mple.com/', 'a space at position 11'],
    ['https://a:b:c/', 'does not parse as a URL'],
  ])('%j is refused: %s', (url, why) => {
    expect(whyNotAbsoluteHttpUrl(url)).toContain(why);
  });

  it('accepts well-formed absolute http(s) URLs', () => {
    for (const url of [
      'https://tasks.example.com/tickets/T%200046',
      'http://localhost:7071/api/x?y=1&z=%2F#frag',
      'https://[::1]:8443/a',
    ])
      expect(whyNotAbsoluteHttpUrl(url), url).toBeUndefined();
  });

  it('encoders: components encode reserved characters, the raw form keeps them; lone surrogates become U+FFFD', () => {
    expect(encodeUriComponentStrict('a/b c')).toBe('a%2Fb%20c');
    expect(encodeUriReserved('a/b c?d=%41')).toBe('a/b%20c?d=%41');
    expect(encodeUriComponentStrict('x\ud800')).toBe('x%EF%BF%BD');
    expect(encodeUriReserved('x\udc00')).toBe('x%EF%BF%BD');
  });
});

describe('validate: URL templates and the raw form', () => {
  it('parses {+path} as a raw placeholder', () => {
    expect(parseTemplate('https://x/{+a.b}/{c}')).toEqual([
      { text: 'https://x/' },
      { path: ['a', 'b'], raw: true },
      { text: '/' },
      { path: ['c'] },
    ]);
  });

  it('refuses a url template that starts with a {field} (its value is encoded, so it cannot be the host)', () => {
    const [e] = errorsAt({ url: '{link}' }, 'mapping.url');
    expect(e?.message).toContain('starts with {link}');
    expect(e?.fix).toContain('{+link}');
    expect(errorsAt({ url: '{+link}' }, 'mapping.url')).toEqual([]);
  });

  it('refuses a url template that cannot make an absolute http(s) URL', () => {
    expect(errorsAt({ url: 'tasks.contoso.com/{n}' }, 'mapping.url')[0]?.message).toContain('http:// or https://');
    expect(errorsAt({ iconUrl: 'https://cdn contoso.com/i.png' }, 'mapping.iconUrl')[0]?.message).toContain('a space');
    expect(errorsAt({ url: 'https://tasks.contoso.com/tickets/{n}' }, 'mapping.url')).toEqual([]);
  });

  it('refuses the raw form outside url and iconUrl, naming the fix', () => {
    const [e] = errorsAt({ id: '{+n}' }, 'mapping.id');
    expect(e?.message).toContain('only applies to url and iconUrl');
    expect(e?.fix).toBe('write {n}');
    expect(errorsAt({ properties: { title: { template: '{+t}' } } }, 'mapping.properties.title.template')).toHaveLength(
      1,
    );
    expect(errorsAt({ content: { type: 'text', template: '{+t}' } }, 'mapping.content.template')).toHaveLength(1);
  });
});
