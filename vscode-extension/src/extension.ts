/** Entry point: wires settings, commands and the server together; the work is in common/. */
import * as log from './common/log';
import * as settings from './common/settings';
import * as vscodeapi from './common/vscodeapi';
import { Companion } from './common/lifecycle';
import { StatusBar } from './common/statusBar';
import { registerCommands } from './common/commands';
import { debounce } from './common/debounce';

const RESTART_DEBOUNCE_MS = 1000;

let companion: Companion | undefined;

export async function activate(context: vscodeapi.ExtensionContext): Promise<void> {
  const version = (context.extension.packageJSON as { version?: string }).version ?? '?';
  log.info(`Companion ${version} activating`);
  const statusBar = new StatusBar();
  companion = new Companion(context.globalStorageUri.fsPath, context.extensionPath, statusBar);
  const current = companion;
  const restartSoon = debounce(() => void current.restart(), RESTART_DEBOUNCE_MS);
  context.subscriptions.push(
    log.logChannel(),
    vscodeapi.registerMarkdownDocuments(),
    statusBar,
    ...registerCommands(current),
    vscodeapi.onDidChangeConfiguration((event) => {
      if (settings.affectsRestart((section) => event.affectsConfiguration(section))) {
        log.info('Settings changed; restarting the server');
        restartSoon();
      }
    }),
    { dispose: () => restartSoon.cancel() },
    vscodeapi.onDidChangeActiveTextEditor((editor) => current.reportFocus(editor)),
  );
  void current.start();
}

export async function deactivate(): Promise<void> {
  await companion?.stop();
  companion = undefined;
}
