/**
 * The Microsoft 365 app package (`dist/appPackage.zip`): `appPackage/manifest.json` with its `${{NAME}}` placeholders
 * filled in, and the two icons. Its `graphConnector.notificationUrl` lets an admin turn the connector on from the
 * admin center (https://learn.microsoft.com/graph/connecting-external-content-deploy-teams; docs/deploy.md).
 * Every value is checked against the published manifest schema facts before anything is written, and every
 * problem is reported at once, naming the variable and the fix.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync, strToU8 } from 'fflate';
import { PNG } from 'pngjs';
import { ConfigError, problem, type ConfigProblem } from '../config/problems.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SEMVER = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
/** `graphConnector` needs manifest 1.11+, and the admin center's enablement 1.13+ (deploy-teams page above). */
const MIN_MANIFEST_VERSION = [1, 13];

/** Icon sizes of the manifest schema: color 192×192, outline 32×32 (white on transparent). */
export const ICONS = { color: 192, outline: 32 } as const;
const ACCENT = [0x0f, 0x6c, 0xbd];

/**
 * Draw the icons: a connector glyph (two rings joined by a bar) in white, on the accent color (color icon) or on
 * transparency (outline icon). Deterministic, so the committed files can be checked against it.
 */
export function renderIcon(kind: keyof typeof ICONS): Buffer {
  const size = ICONS[kind];
  const png = new PNG({ width: size, height: size });
  const s = size / 32;
  const inGlyph = (x: number, y: number): boolean => {
    const u = (x + 0.5) / s;
    const v = (y + 0.5) / s;
    const ring = (cx: number, cy: number) => {
      const d = Math.hypot(u - cx, v - cy);
      return d <= 6.5 && d >= 3.5;
    };
    const bar = u >= 14 && u <= 18 && Math.abs(v - 16) <= 1.75;
    return ring(9, 16) || ring(23, 16) || bar;
  };
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 4;
      const glyph = inGlyph(x, y);
      if (kind === 'color') {
        const [r, g, b] = glyph ? [255, 255, 255] : ACCENT;
        png.data[i] = r!;
        png.data[i + 1] = g!;
        png.data[i + 2] = b!;
        png.data[i + 3] = 255;
      } else {
        png.data[i] = png.data[i + 1] = png.data[i + 2] = 255;
        png.data[i + 3] = glyph ? 255 : 0;
      }
    }
  return PNG.sync.write(png);
}

/** Width and height of a PNG (its IHDR), or undefined when it is not a PNG. */
function pngSize(data: Buffer): { width: number; height: number } | undefined {
  if (data.length < 24 || data.readUInt32BE(0) !== 0x89504e47) return undefined;
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
}

/** `KEY=value` / `KEY="value"` lines of an azd environment file. */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (/^".*"$/.test(v) || /^'.*'$/.test(v)) v = v.slice(1, -1);
    out[m[1]!] = v;
  }
  return out;
}

/** The values of the current azd environment (`.azure/<name>/.env`), when there is one. */
export function azdValues(root: string, envName?: string): Record<string, string> {
  let name = envName;
  if (!name) {
    try {
      name = (JSON.parse(readFileSync(join(root, '.azure', 'config.json'), 'utf8')) as { defaultEnvironment?: string })
        .defaultEnvironment;
    } catch {
      return {};
    }
  }
  const file = join(root, '.azure', name ?? '', '.env');
  return name && existsSync(file) ? parseDotEnv(readFileSync(file, 'utf8')) : {};
}

export interface AppPackageInput {
  /** The repository root (holds appPackage/ and connector.json). */
  root: string;
  /** Settings: M365_APP_ID, GRAPH_CLIENT_ID, AZURE_FUNCTION_URL or NOTIFICATION_URL, and optional APP_* ones. */
  values: Record<string, string | undefined>;
  /** The connector definition, for the default name and description. */
  connectorConfig?: string;
}

export interface AppPackage {
  zip: Uint8Array;
  manifest: Record<string, unknown>;
}

/** Fill in, check and zip the app package; throws ConfigError with every problem. */
export function buildAppPackage(input: AppPackageInput): AppPackage {
  const v = input.values;
  const problems: ConfigProblem[] = [];
  let connection: { name?: string; description?: string } = {};
  try {
    const defPath = input.connectorConfig ?? join(input.root, 'connector.json');
    connection = (JSON.parse(readFileSync(defPath, 'utf8')) as { connection?: typeof connection }).connection ?? {};
  } catch {
    // the name and description then have to come from APP_NAME / APP_DESCRIPTION
  }
  const functionUrl = v.AZURE_FUNCTION_URL?.replace(/\/+$/, '');
  const notificationUrl = v.NOTIFICATION_URL ?? (functionUrl ? `${functionUrl}/api/notification` : undefined);
  const description = v.APP_DESCRIPTION ?? connection.description ?? '';
  const fill: Record<string, string | undefined> = {
    M365_APP_ID: v.M365_APP_ID,
    GRAPH_CLIENT_ID: v.GRAPH_CLIENT_ID,
    NOTIFICATION_URL: notificationUrl,
    APP_VERSION: v.APP_VERSION ?? '1.0.0',
    APP_NAME: v.APP_NAME ?? connection.name,
    APP_DESCRIPTION: description,
    APP_DESCRIPTION_SHORT:
      v.APP_DESCRIPTION_SHORT ?? (description.length <= 80 ? description : `${description.slice(0, 79)}…`),
    DEVELOPER_NAME: v.DEVELOPER_NAME ?? 'graph-connector',
    DEVELOPER_URL: v.DEVELOPER_URL ?? 'https://github.com/',
  };
  const need = (name: string, ok: boolean, message: string, fix: string) => {
    if (!ok) problems.push(problem(name, message, fix));
  };
  need(
    'M365_APP_ID',
    !!fill.M365_APP_ID && GUID.test(fill.M365_APP_ID),
    `the app package id must be a GUID (got '${fill.M365_APP_ID ?? ''}'); it is the connectorId the admin center sends`,
    'azd env set M365_APP_ID "$(node -e "console.log(crypto.randomUUID())")" once, and keep it: a new id is a new app',
  );
  need(
    'GRAPH_CLIENT_ID',
    !!fill.GRAPH_CLIENT_ID && GUID.test(fill.GRAPH_CLIENT_ID),
    `webApplicationInfo.id must be the Entra app id (a GUID; got '${fill.GRAPH_CLIENT_ID ?? ''}'): notifications are addressed to it`,
    'run azd provision first (it sets GRAPH_CLIENT_ID), or azd env set GRAPH_CLIENT_ID <app id>',
  );
  let host = '';
  try {
    const u = new URL(notificationUrl ?? '');
    host = u.host;
    need(
      'AZURE_FUNCTION_URL',
      u.protocol === 'https:',
      `graphConnector.notificationUrl must be https (got '${notificationUrl}')`,
      'use the function app URL azd provision printed (https://<name>.azurewebsites.net)',
    );
  } catch {
    need(
      'AZURE_FUNCTION_URL',
      false,
      'no notification URL: AZURE_FUNCTION_URL (or NOTIFICATION_URL) is not set',
      'run azd provision first (it sets AZURE_FUNCTION_URL), or set NOTIFICATION_URL to https://<host>/api/notification',
    );
  }
  need('APP_VERSION', SEMVER.test(fill.APP_VERSION!), `version '${fill.APP_VERSION}' is not semver`, 'use 1.0.0 style');
  need(
    'APP_NAME',
    !!fill.APP_NAME && fill.APP_NAME.length <= 30,
    `name.short must be 1 to 30 characters (got ${fill.APP_NAME?.length ?? 0})`,
    'set APP_NAME, or shorten connection.name in connector.json',
  );
  need(
    'APP_DESCRIPTION',
    description.length > 0 && description.length <= 4000,
    `description.full must be 1 to 4000 characters (got ${description.length})`,
    'set APP_DESCRIPTION, or connection.description in connector.json',
  );
  need(
    'APP_DESCRIPTION_SHORT',
    fill.APP_DESCRIPTION_SHORT!.length > 0 && fill.APP_DESCRIPTION_SHORT!.length <= 80,
    'description.short must be 1 to 80 characters',
    'set APP_DESCRIPTION_SHORT',
  );
  need(
    'DEVELOPER_NAME',
    fill.DEVELOPER_NAME!.length <= 32,
    'developer.name must be at most 32 characters',
    'shorten DEVELOPER_NAME',
  );
  need(
    'DEVELOPER_URL',
    /^https:\/\//.test(fill.DEVELOPER_URL!),
    'developer.websiteUrl, privacyUrl and termsOfUseUrl must be https URLs',
    'set DEVELOPER_URL to https://…',
  );

  const template = readFileSync(join(input.root, 'appPackage', 'manifest.json'), 'utf8');
  const text = template.replace(/\$\{\{([A-Z0-9_]+)\}\}/g, (_, name: string) => {
    const value = name === 'NOTIFICATION_DOMAIN' ? host : fill[name];
    if (value === undefined) {
      // Known settings were reported above; an unknown placeholder is a template mistake.
      if (!(name in fill))
        problems.push(problem(name, 'appPackage/manifest.json uses a placeholder no setting fills', `set ${name}`));
      return '';
    }
    return JSON.stringify(value).slice(1, -1);
  });
  const manifest = JSON.parse(text) as Record<string, unknown>;
  const mv = (typeof manifest.manifestVersion === 'string' ? manifest.manifestVersion : '').split('.').map(Number);
  if (!(mv[0]! > MIN_MANIFEST_VERSION[0]! || (mv[0] === MIN_MANIFEST_VERSION[0] && mv[1]! >= MIN_MANIFEST_VERSION[1]!)))
    problems.push(
      problem(
        'manifestVersion',
        `is ${String(manifest.manifestVersion)}`,
        'the admin center enablement needs 1.13 or later',
      ),
    );
  if (!/^#[0-9A-Fa-f]{6}$/.test(String(manifest.accentColor)))
    problems.push(problem('accentColor', 'must be #RRGGBB', 'fix appPackage/manifest.json'));
  const files: Record<string, Uint8Array> = { 'manifest.json': strToU8(JSON.stringify(manifest, null, 2) + '\n') };
  for (const kind of Object.keys(ICONS) as (keyof typeof ICONS)[]) {
    const path = join(input.root, 'appPackage', `${kind}.png`);
    const data = existsSync(path) ? readFileSync(path) : undefined;
    const size = data ? pngSize(data) : undefined;
    if (!data || !size || size.width !== ICONS[kind] || size.height !== ICONS[kind])
      problems.push(
        problem(
          `appPackage/${kind}.png`,
          `must be a ${ICONS[kind]}×${ICONS[kind]} PNG${size ? ` (is ${size.width}×${size.height})` : ''}`,
          'run graph-connector app-package --icons to draw the default ones',
        ),
      );
    else files[`${kind}.png`] = data;
  }
  if (problems.length) throw new ConfigError(problems, 'the app package');
  return { zip: zipSync(files, { level: 9, mtime: new Date('2024-01-01T00:00:00Z') }), manifest };
}
