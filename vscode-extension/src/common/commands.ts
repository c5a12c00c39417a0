/**
 * The extension's commands. Their ids differ from the server's executeCommand ids
 * (`companion.explain`, `companion.accepted`, `companion.restart`), which the language
 * client registers by itself.
 */
import type { CodeAction as LspCodeAction, Command as LspCommand } from 'vscode-languageclient/node';
import * as log from './log';
import * as settings from './settings';
import * as vscodeapi from './vscodeapi';
import { Companion } from './lifecycle';
import { renderStatusMarkdown } from './status';

export const COMMANDS = {
  explainSelection: 'companion.explainSelection',
  scaffold: 'companion.scaffold',
  restartServer: 'companion.restartServer',
  showLog: 'companion.showLog',
  showStatus: 'companion.showStatus',
  toggleInline: 'companion.toggleInline',
  installServer: 'companion.installServer',
  menu: 'companion.menu',
} as const;

export const SCAFFOLD_KINDS = ['refactor.rewrite', 'source'];

export function isScaffold(action: { title: string }): boolean {
  return action.title.startsWith('Scaffold');
}

/** "Scaffold: Scaffold a FastAPI app" → "Scaffold a FastAPI app" for the picker. */
export function scaffoldLabel(title: string): string {
  return title.replace(/^Scaffold:\s*(?=Scaffold)/, '');
}

/** The menu behind the status bar item. */
export function menuItems(inlineEnabled: boolean): { label: string; command: string }[] {
  return [
    { label: '$(info) Show Status', command: COMMANDS.showStatus },
    { label: '$(debug-restart) Restart Server', command: COMMANDS.restartServer },
    {
      label: inlineEnabled ? '$(eye-closed) Disable Inline Completions' : '$(eye) Enable Inline Completions',
      command: COMMANDS.toggleInline,
    },
    { label: '$(output) Open Log', command: COMMANDS.showLog },
  ];
}

async function explainSelection(companion: Companion): Promise<void> {
  const editor = vscodeapi.activeTextEditor();
  const client = companion.client.languageClient();
  if (!editor || !client) {
    await vscodeapi.showInformationMessage(editor ? 'Companion is not running.' : 'Open a file and select code to explain.');
    return;
  }
  const selection = editor.selection.isEmpty
    ? editor.document.lineAt(editor.selection.active.line).range
    : editor.selection;
  const uri = client.code2ProtocolConverter.asUri(editor.document.uri);
  const range = client.code2ProtocolConverter.asRange(selection);
  const markdown = await vscodeapi.withNotificationProgress('Companion: explaining…', () =>
    companion.client.executeCommand<string>('companion.explain', [uri, range]),
  );
  if (typeof markdown === 'string' && markdown.trim()) {
    await vscodeapi.showMarkdown('Companion explanation', markdown);
  } else {
    await vscodeapi.showInformationMessage('Companion had no explanation for this selection.');
  }
}

async function scaffold(companion: Companion): Promise<void> {
  const editor = vscodeapi.activeTextEditor();
  const client = companion.client.languageClient();
  if (!editor || !client) {
    await vscodeapi.showInformationMessage(editor ? 'Companion is not running.' : 'Open a file to scaffold into.');
    return;
  }
  const answer = await client.sendRequest<(LspCodeAction | LspCommand)[] | null>('textDocument/codeAction', {
    textDocument: { uri: client.code2ProtocolConverter.asUri(editor.document.uri) },
    range: client.code2ProtocolConverter.asRange(editor.selection),
    context: { diagnostics: [], only: SCAFFOLD_KINDS, triggerKind: 1 },
  });
  const actions = (answer ?? []).filter(isScaffold);
  if (actions.length === 0) {
    await vscodeapi.showInformationMessage('Companion has no scaffolds for this file.');
    return;
  }
  const picked = await vscodeapi.showQuickPick(
    actions.map((action) => ({ label: scaffoldLabel(action.title), action })),
    { title: 'Companion: Scaffold', placeHolder: 'Pick a scaffold to insert' },
  );
  if (!picked) {
    return;
  }
  let action = picked.action;
  if ('command' in action && typeof action.command === 'string') {
    const command = action as LspCommand;
    await vscodeapi.executeCommand(command.command, ...(command.arguments ?? []));
    return;
  }
  const codeAction = action as LspCodeAction;
  if (!codeAction.edit && !codeAction.command && codeAction.data !== undefined) {
    action = await client.sendRequest<LspCodeAction>('codeAction/resolve', codeAction);
  }
  const resolved = action as LspCodeAction;
  if (resolved.edit) {
    await vscodeapi.applyWorkspaceEdit(await client.protocol2CodeConverter.asWorkspaceEdit(resolved.edit));
  }
  if (resolved.command) {
    await vscodeapi.executeCommand(resolved.command.command, ...(resolved.command.arguments ?? []));
  }
}

async function showStatus(companion: Companion): Promise<void> {
  const status = await companion.refreshStatus();
  if (!status) {
    await vscodeapi.showInformationMessage(`Companion is not running. ${companion.statusBar.text()}`);
    return;
  }
  await vscodeapi.showMarkdown('Companion status', renderStatusMarkdown(status));
}

async function menu(): Promise<void> {
  const enabled = vscodeapi.getConfiguration(settings.SECTION).get<boolean>('inline.enable') !== false;
  const picked = await vscodeapi.showQuickPick(menuItems(enabled), { title: 'Companion' });
  if (picked) {
    await vscodeapi.executeCommand(picked.command);
  }
}

function guarded(name: string, run: () => Promise<unknown>): () => Promise<void> {
  return async () => {
    try {
      await run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.error(`${name}: ${message}`);
      await vscodeapi.showErrorMessage(`Companion: ${name} failed: ${message}`);
    }
  };
}

export function registerCommands(companion: Companion): vscodeapi.Disposable[] {
  return [
    vscodeapi.registerCommand(COMMANDS.explainSelection, guarded('Explain', () => explainSelection(companion))),
    vscodeapi.registerCommand(COMMANDS.scaffold, guarded('Scaffold', () => scaffold(companion))),
    vscodeapi.registerCommand(COMMANDS.restartServer, guarded('Restart', () => companion.restart(true))),
    vscodeapi.registerCommand(COMMANDS.showLog, () => log.showLog()),
    vscodeapi.registerCommand(COMMANDS.showStatus, guarded('Show status', () => showStatus(companion))),
    vscodeapi.registerCommand(
      COMMANDS.toggleInline,
      guarded('Toggle', async () => {
        const enabled = await settings.toggleInline();
        vscodeapi.showInformationMessage(`Companion inline completions ${enabled ? 'enabled' : 'disabled'}.`);
      }),
    ),
    vscodeapi.registerCommand(COMMANDS.installServer, guarded('Install', () => companion.install())),
    vscodeapi.registerCommand(COMMANDS.menu, guarded('Menu', menu)),
  ];
}
