import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSample } from '../../scripts/generate-sample.js';
import type { MappingDefinition } from '../../src/config/mapping-definition.js';
import { validateMappingDefinition } from '../../src/config/mapping-definition.js';
import type { ExternalGroup, SchemaProperty } from '../../src/config/model.js';
import type { SourceDefinition } from '../../src/config/source-definition.js';
import { validateSourceDefinition } from '../../src/config/source-definition.js';
import { silentLogger } from '../../src/log.js';
import { createMapper, directoryFromJson } from '../../src/mapping/mapper.js';
import type { SecretProvider } from '../../src/secrets/types.js';
import { createSource } from '../../src/sources/index.js';

const root = process.cwd();
const dir = join(root, 'samples', 'contoso-tasks');
const noSecrets: SecretProvider = {
  get: () => Promise.reject(new Error('no secrets in this test')),
  invalidate: () => {},
  describe: () => 'none',
};

describe('Contoso Tasks sample', () => {
  it('is exactly what the seeded generator produces (regenerate with UPDATE_SAMPLE=1)', () => {
    const files = generateSample();
    if (process.env.UPDATE_SAMPLE === '1') {
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    }
    for (const [name, text] of Object.entries(files)) expect(readFileSync(join(dir, name), 'utf8')).toBe(text);
    expect(generateSample()).toEqual(files); // deterministic
  });

  it('maps every task through connector.json into a valid item with the contract ACLs', async () => {
    const connector = JSON.parse(readFileSync(join(root, 'connector.json'), 'utf8')) as {
      schema: { properties: SchemaProperty[] };
      source: SourceDefinition;
      mapping: MappingDefinition;
    };
    const schema = connector.schema.properties;
    expect(validateSourceDefinition(connector.source, 'source').filter((p) => p.severity === 'error')).toEqual([]);
    expect(validateMappingDefinition(connector.mapping, schema, 'mapping')).toEqual([]);

    const directoryJson = JSON.parse(readFileSync(join(dir, 'directory.json'), 'utf8')) as {
      users: { id: string; userPrincipalName: string; guest: boolean }[];
      groups: { id: string }[];
    };
    expect(directoryJson.users.map((u) => u.userPrincipalName)).toEqual(
      expect.arrayContaining([
        'adele@contoso.com',
        'megan@contoso.com',
        'alex@contoso.com',
        'diego@contoso.com',
        'lynne@contoso.com',
      ]),
    );
    expect(directoryJson.users.some((u) => u.guest)).toBe(true);
    const directory = directoryFromJson(directoryJson);
    const userIds = new Set(directoryJson.users.map((u) => u.id));

    const source = createSource(connector.source, { secrets: noSecrets, logger: silentLogger, baseDir: root });
    const groups: ExternalGroup[] = [];
    for await (const g of source.groups!()) groups.push(g);
    expect(groups.length).toBeGreaterThanOrEqual(5);
    const groupIds = new Set(groups.map((g) => g.id));
    expect(groups.some((g) => g.members.some((m) => m.type === 'externalGroup' && groupIds.has(m.id)))).toBe(true);
    expect(groups.some((g) => g.members.some((m) => m.type === 'group'))).toBe(true);
    for (const g of groups) for (const m of g.members) if (m.type === 'user') expect(userIds.has(m.id)).toBe(true);

    expect(directory.get('adele@contoso.com')).toBe(directoryJson.users[0]!.id);
    // No directory passed in: the mapping loads mapping.acl.directory itself.
    // The sample syncs its teams as external groups: every team a record names must be one of them.
    const mapper = await createMapper(connector.mapping, schema, {
      baseDir: root,
      tenantId: 'tenant',
      syncsExternalGroups: true,
    });
    const externalGroups: ReadonlySet<string> = groupIds;
    const counts = { total: 0, team: 0, restricted: 0, public: 0, deny: 0, attachments: 0 };
    for await (const record of source.read()) {
      counts.total++;
      const r = mapper.map(record, { externalGroups });
      if (!r.ok) throw new Error(r.reason.message);
      expect(r.warnings, record.key).toEqual([]);
      const data = record.data!;
      const grants = r.item.acl.filter((e) => e.accessType === 'grant');
      if (data.visibility === 'team') {
        counts.team++;
        expect(grants).toEqual([{ type: 'externalGroup', value: data.team, accessType: 'grant' }]);
      } else if (data.visibility === 'restricted') {
        counts.restricted++;
        expect(grants.map((g) => g.type)).toEqual((data.allowedUsers as string[]).map(() => 'user'));
        for (const g of grants) expect(userIds.has(g.value)).toBe(true);
      } else {
        counts.public++;
        expect(grants).toEqual([{ type: 'everyone', value: 'tenant', accessType: 'grant' }]);
      }
      const denies = r.item.acl.filter((e) => e.accessType === 'deny');
      if (data.deniedUsers) {
        counts.deny++;
        expect(denies.length).toBe((data.deniedUsers as string[]).length);
      } else expect(denies).toEqual([]);
      expect(r.item.properties.url).toBe(`https://tasks.contoso.com/tickets/${String(data.ticketId)}`);
      expect(r.item.properties.createdDateTime).toMatch(/Z$/);
      expect(r.item.properties['tags@odata.type']).toBe('Collection(String)');
      for (const a of r.attachments ?? []) {
        counts.attachments++;
        expect(a.path, `${record.key}: ${a.name}`).toContain(join('samples', 'contoso-tasks', 'attachments'));
        expect(existsSync(a.path!), `${record.key}: ${a.path}`).toBe(true);
      }
    }
    // TSP100000 carries the PDF, DOCX and PNG; one more ticket links the DOCX under another name.
    expect(counts.attachments).toBe(4);
    expect(counts.total).toBeGreaterThanOrEqual(300);
    expect(counts.total).toBeLessThanOrEqual(400);
    expect(counts.team / counts.total).toBeGreaterThan(0.7);
    expect(counts.restricted).toBeGreaterThan(10);
    expect(counts.public).toBeGreaterThan(3);
    expect(counts.deny).toBeGreaterThan(3);
  });
});
