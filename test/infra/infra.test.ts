/**
 * Infrastructure checks that run without Azure: every .bicep file parses (tree-sitter-bicep), the wiring
 * between files is consistent (parameters file, module params, outputs, abbreviations, azure.yaml), and the
 * security and capacity rules hold on the syntax tree.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateNcrontab } from '../../src/config/ncrontab.js';
import { stateNamesFromEnv } from '../../src/state/storage.js';
import { azureMonitorSettings } from '../../src/telemetry/azure-monitor.js';
import {
  findAll,
  modules,
  objectProps,
  outputs,
  params,
  parseDir,
  path,
  propertyKey,
  propertyValue,
  resolveString,
  resolveStringArray,
  resources,
  stringLiterals,
  stringValue,
  variables,
  type ParsedBicep,
  type SyntaxNode,
} from './bicep.js';

const ROOT = resolve(import.meta.dirname, '../..');
const INFRA = join(ROOT, 'infra');
const files = parseDir(INFRA);
const main = files.get('main.bicep')!;
const api = files.get(join('app', 'api.bicep'))!;
const storage = files.get(join('core', 'storage.bicep'))!;
const vault = files.get(join('core', 'keyvault.bicep'))!;
const monitoring = files.get(join('core', 'monitoring.bicep'))!;
const entra = files.get(join('app', 'entra-app.bicep'))!;
const mainVars = variables(main.root);

const resourceBody = (f: ParsedBicep, typePrefix: string) => {
  const r = resources(f.root).find((x) => x.type.startsWith(typePrefix));
  expect(r, `${f.file}: no resource of type ${typePrefix}`).toBeDefined();
  return r!.body;
};
const literal = (n: SyntaxNode | undefined) => (n ? (n.type === 'string' ? stringValue(n) : n.text) : undefined);

/** The `@allowed([...])` values of a param in main.bicep (the decorators node right before it). */
function allowedValues(name: string): string[] | undefined {
  const kids = main.root.namedChildren;
  const i = kids.findIndex((n) => n.type === 'parameter_declaration' && n.namedChildren[0]?.text === name);
  const decorators = i > 0 && kids[i - 1]!.type === 'decorators' ? kids[i - 1]! : undefined;
  const allowed = decorators?.namedChildren.find((d) => /^@allowed\(/.test(d.text));
  if (!allowed) return undefined;
  return findAll(allowed, 'array')[0]?.namedChildren.map((c) => stringValue(c) ?? c.text);
}

/** A deployed app setting's value: a literal, a var holding one, or a main.bicep param's default. */
function settingValue(node: SyntaxNode | undefined): string | undefined {
  const direct = resolveString(node, mainVars);
  if (direct !== undefined || node?.type !== 'identifier') return direct;
  return stringValue(params(main.root).find((p) => p.name === node.text)?.defaultValue);
}

/** Every binding of the function registrations in functions/*.ts that names an app setting (`%NAME%`). */
function functionBindings(): { file: string; key: 'queueName' | 'schedule'; value: string }[] {
  const dir = join(ROOT, 'functions');
  const out: { file: string; key: 'queueName' | 'schedule'; value: string }[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const src = readFileSync(join(dir, file), 'utf8');
    for (const m of src.matchAll(/\b(queueName|schedule):\s*'([^']*)'/g))
      out.push({ file: `functions/${file}`, key: m[1] as 'queueName' | 'schedule', value: m[2]! });
  }
  return out;
}

/** The api module's appSettings object in main.bicep merged with the settings literal in api.bicep. */
function appSettingKeys(): Map<string, SyntaxNode> {
  const apiModule = modules(main.root).find((m) => m.path === 'app/api.bicep')!;
  const fromMain = objectProps(path(apiModule.body, 'params.appSettings'));
  const settingsRes = resources(api.root).find((r) => r.type === 'config')!;
  const union = path(settingsRes.body, 'properties')!;
  const fromApi = new Map<string, SyntaxNode>();
  for (const obj of findAll(union, 'object')) for (const [k, v] of objectProps(obj)) fromApi.set(k, v);
  return new Map([...fromMain, ...fromApi]);
}

describe('Bicep syntax (tree-sitter-bicep)', () => {
  it('finds the expected templates', () => {
    expect([...files.keys()]).toEqual(
      expect.arrayContaining([
        'main.bicep',
        join('app', 'api.bicep'),
        join('app', 'entra-app.bicep'),
        join('core', 'identity.bicep'),
        join('core', 'keyvault.bicep'),
        join('core', 'monitoring.bicep'),
        join('core', 'storage.bicep'),
      ]),
    );
  });

  it('every .bicep file parses without ERROR or missing nodes', () => {
    const errors = [...files.values()].flatMap((f) => f.errors);
    expect(errors, errors.join('\n')).toEqual([]);
  });

  it('a deliberate syntax error in a copy of a template is caught with file:line:col', () => {
    const src = readFileSync(join(INFRA, 'core', 'storage.bicep'), 'utf8');
    const lines = src.split('\n');
    const idx = lines.findIndex((l) => l.includes('allowSharedKeyAccess: false'));
    expect(idx).toBeGreaterThan(0);
    lines[idx] = lines[idx]!.replace('allowSharedKeyAccess: false', 'allowSharedKeyAccess false');
    const dir = mkdtempSync(join(tmpdir(), 'gc-infra-'));
    cpSync(INFRA, dir, { recursive: true });
    writeFileSync(join(dir, 'core', 'storage.bicep'), lines.join('\n'));

    const broken = parseDir(dir);
    const errors = [...broken.values()].flatMap((f) => f.errors);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.includes('storage.bicep:'))).toBe(true);
    const lineNumbers = errors.map((e) => Number(/storage\.bicep:(\d+):\d+/.exec(e)?.[1]));
    expect(lineNumbers.some((n) => Math.abs(n - (idx + 1)) <= 1)).toBe(true);
  });

  it('no registry modules (br/…, ts/…): every module is a local file that exists', () => {
    for (const f of files.values()) {
      for (const m of modules(f.root)) {
        expect(m.path, `${f.file}: module ${m.name}`).not.toMatch(/^(br[:/]|ts[:/])/);
        expect(files.has(join(dirname(f.file.replace(/^infra\//, '')), m.path)), `${f.file}: ${m.path}`).toBe(true);
      }
    }
  });
});

describe('wiring between files', () => {
  it('main.parameters.json: every parameter is declared, every required param is supplied', () => {
    const json = JSON.parse(readFileSync(join(INFRA, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, unknown>;
    };
    const declared = params(main.root);
    const names = new Set(declared.map((p) => p.name));
    for (const k of Object.keys(json.parameters))
      expect(names, `main.parameters.json: ${k} is not a param`).toContain(k);
    for (const p of declared.filter((d) => !d.defaultValue)) expect(Object.keys(json.parameters)).toContain(p.name);
    const values = JSON.stringify(json.parameters);
    for (const v of ['${AZURE_ENV_NAME}', '${AZURE_LOCATION}', '${AZURE_PRINCIPAL_ID}']) expect(values).toContain(v);
  });

  it('module params passed match the params the module declares (none unknown, none required missing)', () => {
    for (const f of files.values()) {
      for (const m of modules(f.root)) {
        const target = files.get(join(dirname(f.file.replace(/^infra\//, '')), m.path))!;
        const declared = params(target.root);
        const passed = [...objectProps(path(m.body, 'params')).keys()];
        for (const p of passed) {
          expect(
            declared.map((d) => d.name),
            `${f.file}: module ${m.name} passes '${p}' not declared in ${m.path}`,
          ).toContain(p);
        }
        for (const d of declared.filter((x) => !x.defaultValue)) {
          expect(passed, `${f.file}: module ${m.name} does not pass required '${d.name}' of ${m.path}`).toContain(
            d.name,
          );
        }
      }
    }
  });

  it('main outputs are UPPER_SNAKE; no output anywhere names or exposes a key, secret or connection string', () => {
    for (const o of outputs(main.root)) expect(o.name).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    expect(outputs(main.root).map((o) => o.name)).toEqual(
      expect.arrayContaining(['AZURE_FUNCTION_NAME', 'AZURE_CLIENT_ID', 'KEY_VAULT_URL']),
    );
    for (const f of files.values()) {
      for (const o of outputs(f.root)) {
        // "Key Vault" is a resource name, not a key.
        const text = `${o.name} ${o.expression}`.replace(/key_?vault/gi, '');
        expect(text, `${f.file}: output ${o.name}`).not.toMatch(/key|secret|connectionstring|listkeys|password/i);
      }
    }
  });

  it('abbreviations.json has every key main.bicep uses', () => {
    const abbrs = JSON.parse(readFileSync(join(INFRA, 'abbreviations.json'), 'utf8')) as Record<string, string>;
    const used = [...main.src.matchAll(/abbrs\.(\w+)/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(5);
    for (const k of used) expect(abbrs, `abbreviations.json: ${k}`).toHaveProperty(k);
  });

  it('azure.yaml has service api with host function, matching the azd-service-name tag on the function app', () => {
    const yaml = readFileSync(join(ROOT, 'azure.yaml'), 'utf8');
    const services = /^services:\n((?:[ \t]+.*\n?)*)/m.exec(yaml)?.[1] ?? '';
    const api = /^ {2}api:\n((?: {4,}.*\n?)*)/m.exec(services)?.[1] ?? '';
    expect(api).toMatch(/^\s+host:\s*function\s*$/m);
    expect(api).toMatch(/^\s+language:\s*(ts|js|typescript)\s*$/m);
    const site = resources(files.get(join('app', 'api.bicep'))!.root).find((r) =>
      r.type.startsWith('Microsoft.Web/sites@'),
    )!;
    const tags = findAll(site.node, 'object_property').find((p) => propertyKey(p) === 'tags')!;
    const tag = findAll(tags, 'object_property').find((p) => propertyKey(p) === 'azd-service-name');
    expect(stringValue(propertyValue(tag!))).toBe('api');
    expect(yaml).toMatch(/^\s+path:\s*infra\s*$/m);
  });
});

describe('security checklist', () => {
  it('storage: no shared keys, no public blob access, TLS 1.2', () => {
    const props = path(resourceBody(storage, 'Microsoft.Storage/storageAccounts@'), 'properties');
    expect(literal(path(props, 'allowSharedKeyAccess'))).toBe('false');
    expect(literal(path(props, 'allowBlobPublicAccess'))).toBe('false');
    expect(literal(path(props, 'minimumTlsVersion'))).toBe('TLS1_2');
    expect(literal(path(props, 'supportsHttpsTrafficOnly'))).toBe('true');
  });

  it('function app: HTTPS only, TLS 1.2, FTPS disabled, basic publishing auth off, Node 22 in functionAppConfig', () => {
    const props = path(resourceBody(api, 'Microsoft.Web/sites@'), 'properties');
    expect(literal(path(props, 'httpsOnly'))).toBe('true');
    expect(literal(path(props, 'siteConfig.minTlsVersion'))).toBe('1.2');
    expect(literal(path(props, 'siteConfig.ftpsState'))).toBe('Disabled');
    expect(literal(path(props, 'functionAppConfig.runtime.name'))).toBe('node');
    expect(literal(path(props, 'functionAppConfig.runtime.version'))).toBe('22');
    expect(literal(path(props, 'functionAppConfig.deployment.storage.authentication.type'))).toBe(
      'UserAssignedIdentity',
    );
    const policies = resources(api.root).filter((r) => r.type === 'basicPublishingCredentialsPolicies');
    expect(policies.map((p) => literal(path(p.body, 'properties.allow')))).toEqual(['false', 'false']);
    const plan = resourceBody(api, 'Microsoft.Web/serverfarms@');
    expect(literal(path(plan, 'sku.name'))).toBe('FC1');
    expect(literal(path(plan, 'sku.tier'))).toBe('FlexConsumption');
  });

  it('Key Vault uses RBAC; Application Insights refuses local auth and is workspace-based', () => {
    expect(literal(path(resourceBody(vault, 'Microsoft.KeyVault/vaults@'), 'properties.enableRbacAuthorization'))).toBe(
      'true',
    );
    const ai = resourceBody(monitoring, 'Microsoft.Insights/components@');
    expect(literal(path(ai, 'properties.DisableLocalAuth'))).toBe('true');
    expect(path(ai, 'properties.WorkspaceResourceId')?.text).toBe('logs.id');
  });

  it('every role the identity needs is assigned (role definition GUIDs present where they belong)', () => {
    const roles: [ParsedBicep, string, string][] = [
      [storage, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b', 'Storage Blob Data Owner'],
      [storage, '974c5e8b-45b9-4653-ba55-5f855dd0fb88', 'Storage Queue Data Contributor'],
      [storage, '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3', 'Storage Table Data Contributor'],
      [vault, '4633458b-17de-408a-b874-0445c86b69e6', 'Key Vault Secrets User'],
      [vault, 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7', 'Key Vault Secrets Officer'],
      [monitoring, '3913510d-42f4-4e42-8a64-420c390055eb', 'Monitoring Metrics Publisher'],
    ];
    for (const [f, guid, role] of roles) expect(stringLiterals(f.root), `${f.file}: ${role}`).toContain(guid);
    for (const f of [storage, vault, monitoring]) {
      const ras = resources(f.root).filter((r) => r.type.startsWith('Microsoft.Authorization/roleAssignments@'));
      expect(ras.length).toBeGreaterThan(0);
      for (const ra of ras)
        expect(path(ra.body, 'properties.roleDefinitionId')?.text).toContain('Microsoft.Authorization/roleDefinitions');
    }
  });

  it('no FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION on Flex, and no storage connection string', () => {
    for (const f of files.values()) {
      const keys = findAll(f.root, 'object_property').map(propertyKey);
      expect(keys, f.file).not.toContain('FUNCTIONS_WORKER_RUNTIME');
      expect(keys, f.file).not.toContain('FUNCTIONS_EXTENSION_VERSION');
      expect(keys, f.file).not.toContain('AzureWebJobsStorage');
      expect(f.src, f.file).not.toMatch(/listKeys\(|AccountKey=/);
    }
    const s = appSettingKeys();
    expect(literal(s.get('AzureWebJobsStorage__credential'))).toBe('managedidentity');
    for (const k of [
      'AzureWebJobsStorage__clientId',
      'AzureWebJobsStorage__queueServiceUri',
      'AzureWebJobsStorage__tableServiceUri',
      'AzureWebJobsStorage__blobServiceUri',
    ]) {
      expect(s.has(k), k).toBe(true);
    }
    expect(s.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')?.text).toContain('Authorization=AAD');
    // The connector's own exporter reads the same setting: the user-assigned identity, never the key.
    const auth = (s.get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')?.text ?? '').replace(/^'|'$/g, '');
    const clientId = '11111111-2222-3333-4444-555555555555';
    expect(
      azureMonitorSettings({
        APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=00000000-0000-0000-0000-000000000000',
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: auth.replace('${identityClientId}', clientId),
      })?.identity,
    ).toEqual({ kind: 'userAssigned', clientId });
  });

  it('the app settings carry the connector environment contract, GRAPH_CREDENTIAL defaulting to workloadIdentity', () => {
    const s = appSettingKeys();
    for (const k of [
      'GRAPH_BASE_URL',
      'GRAPH_TENANT_ID',
      'GRAPH_CLIENT_ID',
      'GRAPH_CREDENTIAL',
      'AZURE_CLIENT_ID',
      'KEY_VAULT_URL',
      'CRAWL_SCHEDULE',
      'CRAWL_TIMER_MODE',
      'ITEMS_QUEUE',
      'CRAWL_QUEUE',
      'PROVISION_QUEUE',
      'LEDGER_TABLE_PREFIX',
      'CLAIMS_CONTAINER',
      'CONNECTOR_CONFIG',
    ]) {
      expect(s.has(k), `app setting ${k}`).toBe(true);
    }
    expect(s.get('GRAPH_CREDENTIAL')?.text).toBe('graphCredential');
    const p = params(main.root).find((x) => x.name === 'graphCredential')!;
    expect(stringValue(p.defaultValue)).toBe('workloadIdentity');
    const schedule = params(main.root).find((x) => x.name === 'crawlSchedule')!;
    expect(stringValue(schedule.defaultValue)?.split(' ')).toHaveLength(6);
  });

  it('every queue, poison queue, table and container the connector uses is pre-created', () => {
    const s = appSettingKeys();
    const storageModule = modules(main.root).find((m) => m.path === 'core/storage.bicep')!;
    const queues = resolveStringArray(path(storageModule.body, 'params.queueNames'), mainVars)!;
    const tables = resolveStringArray(path(storageModule.body, 'params.tableNames'), mainVars)!;
    // The storage module's containers: the entries of `storageContainers` ({ name, appRole }) in main.bicep.
    expect(path(storageModule.body, 'params.containers')?.text).toBe('storageContainers');
    const containers = findAll(mainVars.get('storageContainers')!, 'object')
      .map((o) => objectProps(o))
      .filter((p) => p.has('appRole'))
      .map((p) => resolveString(p.get('name'), mainVars) ?? p.get('name')!.text);

    const itemsQueue = resolveString(s.get('ITEMS_QUEUE'), mainVars)!;
    const crawlQueue = resolveString(s.get('CRAWL_QUEUE'), mainVars)!;
    const provisionQueue = resolveString(s.get('PROVISION_QUEUE'), mainVars)!;
    expect(itemsQueue).toBe('graph-items');
    expect(crawlQueue).toBe('graph-crawl');
    expect(provisionQueue).toBe('graph-provision');
    expect(queues).toEqual(
      expect.arrayContaining([
        itemsQueue,
        `${itemsQueue}-poison`,
        crawlQueue,
        `${crawlQueue}-poison`,
        provisionQueue,
        `${provisionQueue}-poison`,
      ]),
    );
    expect(new Set(queues).size, 'no queue listed twice').toBe(queues.length);

    const prefix = resolveString(s.get('LEDGER_TABLE_PREFIX'), mainVars)!;
    expect(prefix).toBe('gc');
    for (const t of ['items', 'jobs', 'cursors', 'deadletters', 'leases', 'provision'])
      expect(tables).toContain(`${prefix}${t}`);

    expect(containers).toContain(resolveString(s.get('CLAIMS_CONTAINER'), mainVars));
    expect(containers).toContain('deploymentContainerName');
    const apiModule = modules(main.root).find((m) => m.path === 'app/api.bicep')!;
    expect(path(apiModule.body, 'params.deploymentContainerName')?.text).toBe('deploymentContainerName');

    // The storage module creates what it is given (one loop each for containers, queues, tables).
    for (const [child, param] of [
      ['containers', 'containers'],
      ['queues', 'queueNames'],
      ['tables', 'tableNames'],
    ] as const) {
      const r = resources(storage.root).find((x) => x.type === child)!;
      expect(r.node.text, `${child} loop`).toMatch(new RegExp(`for \\w+ in ${param}`));
    }
  });

  it('every %SETTING% a function binding uses is an app setting; every bound queue and its -poison queue is pre-created', () => {
    // Regression: a function bound through an app setting the template does not define fails to index on
    // Azure ("'%CRAWL_QUEUE%' does not resolve to a value"), and a queue missing from the account is created
    // at run time only if the identity may, so a new queue must land in the app settings and the storage module.
    const bindings = functionBindings();
    expect(bindings.map((b) => b.value)).toEqual(
      expect.arrayContaining(['%ITEMS_QUEUE%', '%ITEMS_QUEUE%-poison', '%CRAWL_QUEUE%', '%PROVISION_QUEUE%']),
    );
    const s = appSettingKeys();
    const storageModule = modules(main.root).find((m) => m.path === 'core/storage.bicep')!;
    const queues = resolveStringArray(path(storageModule.body, 'params.queueNames'), mainVars)!;
    const example = JSON.parse(readFileSync(join(ROOT, 'local.settings.example.json'), 'utf8')) as {
      Values: Record<string, string>;
    };
    const substitute = (value: string, lookup: (name: string) => string | undefined, where: string) =>
      value.replace(/%([A-Za-z_][A-Za-z0-9_]*)%/g, (_, name: string) => {
        const v = lookup(name);
        expect(v, `${where}: %${name}% is not defined`).toBeDefined();
        return v ?? '';
      });
    for (const b of bindings) {
      for (const [, name] of b.value.matchAll(/%([A-Za-z_][A-Za-z0-9_]*)%/g)) {
        expect(s.has(name!), `${b.file}: ${b.key} uses %${name}%, which is not an app setting in infra/`).toBe(true);
        expect(example.Values, `${b.file}: %${name}% missing from local.settings.example.json`).toHaveProperty(name!);
      }
      const deployed = substitute(b.value, (n) => settingValue(s.get(n)), b.file);
      const local = substitute(b.value, (n) => example.Values[n], `local.settings.example.json for ${b.file}`);
      if (b.key === 'queueName') {
        expect(queues, `${b.file}: queue ${deployed} is not pre-created`).toContain(deployed);
        if (!deployed.endsWith('-poison'))
          expect(queues, `${b.file}: poison queue ${deployed}-poison is not pre-created`).toContain(
            `${deployed}-poison`,
          );
        expect(local, `${b.file}: local.settings.example.json names another queue`).toBe(deployed);
      } else {
        expect(validateNcrontab(deployed), `${b.file}: deployed schedule '${deployed}'`).toEqual([]);
        expect(validateNcrontab(local), `${b.file}: local schedule '${local}'`).toEqual([]);
      }
    }
  });

  it('CRAWL_TIMER_MODE is a parameter limited to the modes the runtime knows, defaulting to full', () => {
    const s = appSettingKeys();
    expect(s.get('CRAWL_TIMER_MODE')?.text).toBe('crawlTimerMode');
    const p = params(main.root).find((x) => x.name === 'crawlTimerMode')!;
    expect(stringValue(p.defaultValue)).toBe('full');
    expect(allowedValues('crawlTimerMode')?.sort()).toEqual(['full', 'incremental']);
    const runtime = readFileSync(join(ROOT, 'src', 'host', 'runtime.ts'), 'utf8');
    expect(runtime).toMatch(/CRAWL_TIMER_MODE[^\n]*'incremental'/);
    const json = JSON.parse(readFileSync(join(INFRA, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value: string }>;
    };
    expect(json.parameters.crawlTimerMode?.value).toBe('${CRAWL_TIMER_MODE=full}');
  });

  it('the names the state layer derives from the deployed app settings are exactly the pre-created ones', () => {
    const s = appSettingKeys();
    const env: Record<string, string> = {};
    for (const k of ['ITEMS_QUEUE', 'PROVISION_QUEUE', 'LEDGER_TABLE_PREFIX', 'CLAIMS_CONTAINER']) {
      env[k] = resolveString(s.get(k), mainVars)!;
    }
    const names = stateNamesFromEnv(env);
    const storageModule = modules(main.root).find((m) => m.path === 'core/storage.bicep')!;
    const queues = resolveStringArray(path(storageModule.body, 'params.queueNames'), mainVars)!;
    const tables = resolveStringArray(path(storageModule.body, 'params.tableNames'), mainVars)!;
    expect(queues).toEqual(
      expect.arrayContaining([
        names.itemsQueue,
        `${names.itemsQueue}-poison`,
        names.provisionQueue,
        `${names.provisionQueue}-poison`,
      ]),
    );
    for (const t of tables) expect(t!.startsWith(names.tablePrefix)).toBe(true);
    // With no settings at all the code falls back to the same defaults the infra creates.
    expect(stateNamesFromEnv({})).toEqual(names);
  });

  it('concurrency: maximumInstanceCount is a parameter and the defaults keep Graph operations <= 25 per connection', () => {
    const site = path(
      resourceBody(api, 'Microsoft.Web/sites@'),
      'properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount',
    )!;
    expect(site.type).toBe('identifier');
    expect(params(api.root).map((p) => p.name)).toContain(site.text);
    const apiModule = modules(main.root).find((m) => m.path === 'app/api.bicep')!;
    expect(path(apiModule.body, 'params.maximumInstanceCount')?.text).toBe('maximumInstanceCount');

    const num = (name: string) => Number(params(main.root).find((p) => p.name === name)!.defaultValue!.text);
    const perInstance = num('queueBatchSize') + num('queueNewBatchThreshold');
    expect(num('maximumInstanceCount') * perInstance).toBeLessThanOrEqual(25);

    // The app settings pin host.json's queue settings to the same parameters, and host.json agrees.
    const s = appSettingKeys();
    expect(s.get('AzureFunctionsJobHost__extensions__queues__batchSize')?.text).toContain('queueBatchSize');
    expect(s.get('AzureFunctionsJobHost__extensions__queues__newBatchThreshold')?.text).toContain(
      'queueNewBatchThreshold',
    );
    const host = JSON.parse(readFileSync(join(ROOT, 'host.json'), 'utf8')) as {
      extensions?: { queues?: { batchSize?: number; newBatchThreshold?: number } };
    };
    expect(host.extensions?.queues?.batchSize).toBe(num('queueBatchSize'));
    expect(host.extensions?.queues?.newBatchThreshold).toBe(num('queueNewBatchThreshold'));
  });
});

describe('optional Entra app (Microsoft Graph Bicep extension)', () => {
  it('is gated by createEntraApp = false', () => {
    const p = params(main.root).find((x) => x.name === 'createEntraApp')!;
    expect(p.type).toBe('bool');
    expect(p.defaultValue?.text).toBe('false');
    const m = modules(main.root).find((x) => x.path === 'app/entra-app.bicep')!;
    expect(m.node.text).toMatch(/=\s*if\s*\(createEntraApp\)/);
  });

  it('declares the extension, configured in bicepconfig.json', () => {
    expect(entra.src).toMatch(/^extension microsoftGraphV1$/m);
    const cfg = JSON.parse(readFileSync(join(INFRA, 'bicepconfig.json'), 'utf8')) as {
      extensions: Record<string, string>;
    };
    expect(cfg.extensions.microsoftGraphV1).toMatch(
      /^br:mcr\.microsoft\.com\/bicep\/extensions\/microsoftgraph\/v1\.0:\d+\.\d+\.\d+$/,
    );
  });

  it('grants the two OwnedBy app roles on Microsoft Graph and trusts the managed identity as a federated credential', () => {
    const rs = resources(entra.root);
    expect(rs.map((r) => r.type)).toEqual(
      expect.arrayContaining([
        'Microsoft.Graph/applications@v1.0',
        'Microsoft.Graph/servicePrincipals@v1.0',
        'Microsoft.Graph/appRoleAssignedTo@v1.0',
        'federatedIdentityCredentials@v1.0',
      ]),
    );
    const vars = variables(entra.root);
    const grants = rs.filter((r) => r.type === 'Microsoft.Graph/appRoleAssignedTo@v1.0');
    expect(grants.map((g) => resolveString(path(g.body, 'appRoleId'), vars)).sort()).toEqual(
      ['8116ae0f-55c2-452d-9944-d18420f5b2c8', 'f431331c-49a6-499f-be1c-62af19c34a9d'].sort(),
    );
    expect(resolveString(vars.get('microsoftGraphAppId'), vars)).toBe('00000003-0000-0000-c000-000000000000');

    const fic = rs.find((r) => r.type === 'federatedIdentityCredentials@v1.0')!;
    expect(path(fic.body, 'subject')?.text).toBe('managedIdentityPrincipalId');
    expect(path(fic.body, 'issuer')?.text).toMatch(/\$\{tenantId\}\/v2\.0'$/);
    expect(path(fic.body, 'issuer')?.text).toContain('loginEndpoint');
    expect(path(fic.body, 'audiences')?.namedChildren.map((c) => stringValue(c))).toEqual([
      'api://AzureADTokenExchange',
    ]);

    const m = modules(main.root).find((x) => x.path === 'app/entra-app.bicep')!;
    expect(path(m.body, 'params.managedIdentityPrincipalId')?.text).toBe('identity.outputs.principalId');
  });
});

describe('least privilege and audit (regressions: the identity could read every blob; no purge protection; no audit logs)', () => {
  const BLOB_ROLES = {
    Owner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
    Contributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
    Reader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
  };
  const roleAssignments = (f: ParsedBicep) =>
    resources(f.root).filter((r) => r.type.startsWith('Microsoft.Authorization/roleAssignments@'));

  it('the function identity holds no blob role on the storage account: only container-scoped ones', () => {
    const vars = variables(storage.root);
    const app = roleAssignments(storage).filter(
      (r) => path(r.body, 'properties.principalId')?.text === 'appPrincipalId',
    );
    expect(app.length).toBeGreaterThan(0);
    const onAccount = app.filter((r) => path(r.body, 'scope')?.text === 'storage');
    const accountRoles = onAccount.flatMap((r) => {
      const loop = /\bfor\s+\w+\s+in\s+(\w+)\s*:/.exec(r.node.text);
      if (loop) return resolveStringArray(vars.get(loop[1]!), vars) ?? [`(unresolved ${loop[1]})`];
      const id = path(r.body, 'properties.roleDefinitionId');
      return findAll(id!, 'identifier').map((n) => resolveString(n, vars) ?? n.text);
    });
    expect(accountRoles.length, 'queue and table roles stay on the account').toBeGreaterThan(0);
    for (const guid of Object.values(BLOB_ROLES))
      expect(accountRoles, 'a blob role assigned to the identity on the whole account').not.toContain(guid);

    // Blob roles come per container, from the role each container entry names.
    const perContainer = app.filter((r) => /blobContainers\[/.test(path(r.body, 'scope')?.text ?? ''));
    expect(perContainer).toHaveLength(1);
    expect(perContainer[0]!.node.text).toMatch(/for\s+\(\w+,\s*\w+\)\s+in\s+containers\s*:/);
    expect(path(perContainer[0]!.body, 'properties.roleDefinitionId')?.text).toMatch(/blobRoles\[\w+\.appRole\]/);
    const blobRoles = objectProps(vars.get('blobRoles'));
    for (const [name, guid] of Object.entries(BLOB_ROLES)) expect(stringValue(blobRoles.get(name)), name).toBe(guid);
  });

  it('each container gets the least role: host containers Owner, claims, state and package Contributor, attachments Reader', () => {
    const entries = new Map<string, string>();
    for (const obj of findAll(main.root, 'object')) {
      const p = objectProps(obj);
      const name = p.get('name');
      const role = stringValue(p.get('appRole'));
      if (!name || !role) continue;
      entries.set(resolveString(name, mainVars) ?? name.text, role);
    }
    expect(Object.fromEntries(entries)).toEqual({
      'azure-webjobs-hosts': 'Owner',
      'azure-webjobs-secrets': 'Owner',
      deploymentContainerName: 'Contributor',
      'graph-claims': 'Contributor',
      'graph-state': 'Contributor',
      c: 'Reader',
    });
    // `c` is each of the attachments containers, a parameter (default none).
    expect(main.src).toMatch(/map\(attachmentContainers,\s*c\s*=>\s*\{/);
    const p = params(main.root).find((x) => x.name === 'attachmentContainers')!;
    expect(p.type).toBe('array');
    expect(p.defaultValue?.text).toBe('[]');
    const storageModule = modules(main.root).find((m) => m.path === 'core/storage.bicep')!;
    expect(path(storageModule.body, 'params.containers')?.text).toBe('storageContainers');
    expect(storage.src).not.toMatch(/param containerNames\b/);
    const loop = resources(storage.root).find((x) => x.type === 'containers')!;
    expect(loop.node.text).toMatch(/for \w+ in containers\s*:/);
  });

  it('Key Vault: purge protection on by default, deleted secrets kept 90 days', () => {
    const body = resourceBody(vault, 'Microsoft.KeyVault/vaults@');
    expect(literal(path(body, 'properties.softDeleteRetentionInDays'))).toBe('90');
    expect(literal(path(body, 'properties.enableSoftDelete'))).toBe('true');
    const p = params(vault.root).find((x) => x.name === 'enablePurgeProtection')!;
    expect(p.defaultValue?.text).toBe('true');
    expect(path(body, 'properties.enablePurgeProtection')?.text).toMatch(/enablePurgeProtection/);
    const m = modules(main.root).find((x) => x.path === 'core/keyvault.bicep')!;
    expect(path(m.body, 'params.enablePurgeProtection')?.text).toBe('keyVaultPurgeProtection');
    expect(params(main.root).find((x) => x.name === 'keyVaultPurgeProtection')?.defaultValue?.text).toBe('true');
  });

  it('audit logs of Key Vault, storage (blob, queue, table) and the function app go to the Log Analytics workspace', () => {
    const expected: [ParsedBicep, string, string][] = [
      [vault, 'vault', 'core/keyvault.bicep'],
      [storage, 'storage::blobServices', 'core/storage.bicep'],
      [storage, 'storage::queueServices', 'core/storage.bicep'],
      [storage, 'storage::tableServices', 'core/storage.bicep'],
      [api, 'app', 'app/api.bicep'],
    ];
    for (const [f, scope, modulePath] of expected) {
      const ds = resources(f.root).filter(
        (r) => r.type.startsWith('Microsoft.Insights/diagnosticSettings@') && path(r.body, 'scope')?.text === scope,
      );
      expect(ds, `${f.file}: diagnostic settings on ${scope}`).toHaveLength(1);
      const props = path(ds[0]!.body, 'properties');
      const workspace = path(props, 'workspaceId')!;
      expect(workspace.type).toBe('identifier');
      expect(params(f.root).map((p) => p.name)).toContain(workspace.text);
      const logs = path(props, 'logs')!;
      const groups = logs.namedChildren.map((o) => objectProps(o));
      expect(
        groups.some(
          (g) =>
            ['audit', 'allLogs'].includes(stringValue(g.get('categoryGroup')) ?? '') &&
            g.get('enabled')?.text === 'true',
        ),
        `${f.file}: ${scope} sends its audit category group`,
      ).toBe(true);
      const m = modules(main.root).find((x) => x.path === modulePath)!;
      expect(path(m.body, `params.${workspace.text}`)?.text, modulePath).toBe('monitoring.outputs.logAnalyticsId');
    }
    expect(outputs(monitoring.root).find((o) => o.name === 'logAnalyticsId')?.expression).toBe('logs.id');
  });
});
