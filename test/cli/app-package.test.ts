/**
 * The Microsoft 365 app package: the manifest filled from the settings and checked against the manifest schema facts
 * (docs/deploy.md), the committed icons being the drawn ones at the schema's sizes, and every bad setting named.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync, strFromU8 } from 'fflate';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { buildAppPackage, ICONS, parseDotEnv, renderIcon } from '../../src/cli/app-package.js';
import { ConfigError } from '../../src/config/problems.js';
import { ROOT } from '../support/stack.js';

const APP = '3f2b8c1e-7d4a-4e59-9b61-0c8d2e4f5a67';
const CLIENT = '9a1c2b3d-4e5f-4a6b-8c7d-1e2f3a4b5c6d';

describe('the Microsoft 365 app package', () => {
  it('fills the manifest with the ids and the notification URL of the deployed function', () => {
    const { zip } = buildAppPackage({
      root: ROOT,
      values: { M365_APP_ID: APP, GRAPH_CLIENT_ID: CLIENT, AZURE_FUNCTION_URL: 'https://func-abc.azurewebsites.net/' },
    });
    const files = unzipSync(zip);
    expect(Object.keys(files).sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
    const m = JSON.parse(strFromU8(files['manifest.json']!)) as Record<string, any>;
    expect(m).toMatchObject({
      manifestVersion: '1.16',
      id: APP,
      webApplicationInfo: { id: CLIENT, resource: `api://${CLIENT}` },
      graphConnector: { notificationUrl: 'https://func-abc.azurewebsites.net/api/notification' },
      validDomains: ['func-abc.azurewebsites.net'],
      icons: { color: 'color.png', outline: 'outline.png' },
    });
    expect(m.name.short.length).toBeLessThanOrEqual(30);
    expect(m.description.short.length).toBeLessThanOrEqual(80);
    expect(JSON.stringify(m)).not.toMatch(/\$\{\{/);
  });

  it('ships the drawn icons at the schema sizes: color 192×192 opaque, outline 32×32 white on transparent', () => {
    for (const kind of Object.keys(ICONS) as (keyof typeof ICONS)[]) {
      const committed = readFileSync(join(ROOT, 'appPackage', `${kind}.png`));
      expect(committed.equals(renderIcon(kind)), `${kind}.png is not the drawn one: run app-package --icons`).toBe(
        true,
      );
      const png = PNG.sync.read(committed);
      expect([png.width, png.height]).toEqual([ICONS[kind], ICONS[kind]]);
      const alphas = new Set<number>();
      for (let i = 3; i < png.data.length; i += 4) alphas.add(png.data[i]!);
      expect([...alphas].sort()).toEqual(kind === 'color' ? [255] : [0, 255]);
    }
  });

  it('names every bad setting at once, with the fix', () => {
    let err: unknown;
    try {
      buildAppPackage({
        root: ROOT,
        values: {
          M365_APP_ID: 'my-app',
          GRAPH_CLIENT_ID: CLIENT,
          NOTIFICATION_URL: 'http://insecure/api/notification',
          APP_NAME: 'x'.repeat(31),
        },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const paths = (err as ConfigError).problems.map((p) => p.path).sort();
    expect(paths).toEqual(['APP_NAME', 'AZURE_FUNCTION_URL', 'M365_APP_ID']);
    expect((err as ConfigError).message).toMatch(/azd env set M365_APP_ID/);
  });

  it('reads azd environment files', () => {
    expect(parseDotEnv('A="1"\nB=two\n# note\nC=\'3\'\n')).toEqual({ A: '1', B: 'two', C: '3' });
  });
});
