/**
 * The Azure Monitor workbook: deployed by app/workbook.bicep from the JSON beside it, over the Application Insights
 * component main.bicep creates, and reading the connector's OpenTelemetry metrics by the names the connector sends.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modules, outputs, parseDir, path, resources, stringValue } from './bicep.js';

const INFRA = resolve(import.meta.dirname, '../../infra');
const files = parseDir(INFRA);
const main = files.get('main.bicep')!;
const bicep = files.get(join('app', 'workbook.bicep'))!;
const monitoring = files.get(join('core', 'monitoring.bicep'))!;

/** The metrics the connector sends (customMetrics.name), each with the `connection.id` attribute. */
const METRICS = [
  'graph_connector.items.ingested',
  'graph_connector.items.unchanged',
  'graph_connector.items.rejected',
  'graph_connector.items.dead_lettered',
  'graph_connector.graph.throttled',
  'graph_connector.graph.retry_after_seconds',
  'graph_connector.queue.depth',
  'graph_connector.crawl.duration',
];

interface Item {
  type: number;
  name: string;
  content: { query?: string; version?: string; parameters?: { name: string; query?: string }[] };
}

describe('the Azure Monitor workbook', () => {
  const workbook = resources(bicep.root).find((r) => r.type.startsWith('Microsoft.Insights/workbooks@'))!;

  it('is a shared workbook on the Application Insights component, named by a stable GUID', () => {
    expect(bicep.errors).toEqual([]);
    expect(workbook.type).toBe('Microsoft.Insights/workbooks@2023-06-01');
    expect(stringValue(path(workbook.body, 'kind'))).toBe('shared');
    expect(path(workbook.body, 'name')?.text).toMatch(/^guid\(resourceGroup\(\)\.id, appInsightsId, /);
    expect(path(workbook.body, 'properties.sourceId')?.text).toBe('appInsightsId');
    expect(stringValue(path(workbook.body, 'properties.version'))).toBe('Notebook/1.0');
    const m = modules(main.root).find((x) => x.path === 'app/workbook.bicep');
    expect(m, 'main.bicep deploys app/workbook.bicep').toBeDefined();
    expect(path(m!.body, 'params.appInsightsId')?.text).toBe('monitoring.outputs.appInsightsId');
    expect(outputs(monitoring.root).find((o) => o.name === 'appInsightsId')?.expression).toBe('appInsights.id');
  });

  const data = path(workbook.body, 'properties.serializedData')!.text;
  const file = /^loadTextContent\('([^']+)'\)$/.exec(data)?.[1];
  const json = file ? join(INFRA, 'app', file) : '';

  it('loads its content from a JSON file beside it, in the Notebook/1.0 format', () => {
    expect(file, `serializedData is ${data}`).toBeDefined();
    expect(existsSync(json)).toBe(true);
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { version: string; items: Item[] };
    expect(parsed.version).toBe('Notebook/1.0');
    const names = parsed.items.map((i) => i.name);
    expect(new Set(names).size, 'item names are unique').toBe(names.length);
  });

  it('charts every connector metric, filtered by the connection.id attribute', () => {
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { items: Item[] };
    const queries = parsed.items.filter((i) => i.type === 3).map((i) => i.content.query ?? '');
    for (const metric of METRICS) expect(queries.join('\n'), metric).toContain(`'${metric}'`);
    // Every name a metric query mentions is one the connector sends (a typo would chart nothing, silently).
    const mentioned = queries.flatMap((q) => [...q.matchAll(/'(graph_connector\.[a-z_.]*[a-z_])'/g)].map((m) => m[1]));
    for (const name of mentioned) expect(METRICS, name).toContain(name);
    for (const q of queries.filter((q) => q.startsWith('customMetrics'))) {
      expect(q).toContain("customDimensions['connection.id']");
      expect(q).toContain('{Connection}');
    }
    const parameters = parsed.items.find((i) => i.type === 9)!.content.parameters!.map((p) => p.name);
    expect(parameters).toEqual(['TimeRange', 'Connection']);
  });
});
