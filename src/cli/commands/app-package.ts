import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { defineCommand } from '../args.js';
import { azdValues, buildAppPackage, ICONS, renderIcon } from '../app-package.js';
import { ConfigError } from '../../config/problems.js';

const help = `Usage: graph-connector app-package [--out dist/appPackage.zip] [--env-name <azd env>] [--icons]

Builds the Microsoft 365 app package an admin uploads to the admin center to turn the connector on there
(graphConnector.notificationUrl → the notification function). Fills appPackage/manifest.json from the
environment, then the current azd environment (.azure/<name>/.env):

  M365_APP_ID         the app package id, a GUID you choose once (it is the connectorId)
  GRAPH_CLIENT_ID     the Entra app id (webApplicationInfo.id; notifications are addressed to it)
  AZURE_FUNCTION_URL  the function app's https URL (or NOTIFICATION_URL, the whole notification URL)
  APP_NAME, APP_DESCRIPTION, APP_DESCRIPTION_SHORT, APP_VERSION, DEVELOPER_NAME, DEVELOPER_URL (optional)

Every problem is printed at once. See docs/deploy.md.

Options:
      --out <file>       where to write the zip (default dist/appPackage.zip)
      --env-name <name>  the azd environment to read (default: azd's default environment)
      --icons            (re)draw appPackage/color.png and outline.png first`;

export const appPackageCommand = defineCommand({
  name: 'app-package',
  summary: 'Build the Microsoft 365 app package (dist/appPackage.zip) for the admin center',
  help,
  args: { options: { out: { type: 'string' }, 'env-name': { type: 'string' }, icons: { type: 'boolean' } } },
  async run({ values }, io) {
    const root = process.cwd();
    if (values.icons)
      for (const kind of Object.keys(ICONS) as (keyof typeof ICONS)[])
        writeFileSync(resolve(root, 'appPackage', `${kind}.png`), renderIcon(kind));
    const settings = { ...azdValues(root, values['env-name'] ?? io.env.AZURE_ENV_NAME), ...io.env };
    try {
      const pkg = buildAppPackage({
        root,
        values: settings,
        ...(settings.CONNECTOR_CONFIG ? { connectorConfig: resolve(root, settings.CONNECTOR_CONFIG) } : {}),
      });
      const out = resolve(root, values.out ?? 'dist/appPackage.zip');
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, pkg.zip);
      const gc = pkg.manifest.graphConnector as { notificationUrl: string };
      io.stdout.write(
        `${out}: app ${String(pkg.manifest.id)}, notifications to ${gc.notificationUrl}\n` +
          'upload it in the Teams admin center (Manage apps → Upload new app), then turn the connector on in its Graph Connector tab\n',
      );
      return 0;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      io.stderr.write(`${e.message}\n`);
      return 1;
    }
  },
});
