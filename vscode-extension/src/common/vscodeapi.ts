/**
 * The one place that touches the `vscode` API. Every other module calls these functions, so
 * unit tests replace this module (or the `vscode` module it imports) with a fake.
 */
import * as vscode from 'vscode';

export type {
  CancellationToken,
  ConfigurationChangeEvent,
  Disposable,
  ExtensionContext,
  LogOutputChannel,
  QuickPickItem,
  StatusBarItem,
  TextDocument,
  TextEditor,
  Uri,
  WorkspaceConfiguration,
} from 'vscode';

export function createLogOutputChannel(name: string): vscode.LogOutputChannel {
  return vscode.window.createOutputChannel(name, { log: true });
}

export function getConfiguration(
  section: string,
  scope?: vscode.ConfigurationScope | null,
): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(section, scope);
}

export function onDidChangeConfiguration(
  listener: (event: vscode.ConfigurationChangeEvent) => unknown,
): vscode.Disposable {
  return vscode.workspace.onDidChangeConfiguration(listener);
}

export function registerCommand(
  command: string,
  callback: (...args: any[]) => unknown,
): vscode.Disposable {
  return vscode.commands.registerCommand(command, callback);
}

export function executeCommand<T = unknown>(command: string, ...rest: unknown[]): Thenable<T> {
  return vscode.commands.executeCommand<T>(command, ...rest);
}

export function createStatusBarItem(id: string, priority: number): vscode.StatusBarItem {
  return vscode.window.createStatusBarItem(id, vscode.StatusBarAlignment.Right, priority);
}

export function warningBackground(): vscode.ThemeColor {
  return new vscode.ThemeColor('statusBarItem.warningBackground');
}

export function showErrorMessage(message: string, ...items: string[]): Thenable<string | undefined> {
  return vscode.window.showErrorMessage(message, ...items);
}

export function showWarningMessage(message: string, ...items: string[]): Thenable<string | undefined> {
  return vscode.window.showWarningMessage(message, ...items);
}

export function showInformationMessage(
  message: string,
  ...items: string[]
): Thenable<string | undefined> {
  return vscode.window.showInformationMessage(message, ...items);
}

export function showQuickPick<T extends vscode.QuickPickItem>(
  items: T[],
  options: vscode.QuickPickOptions,
): Thenable<T | undefined> {
  return vscode.window.showQuickPick(items, options);
}

export function activeTextEditor(): vscode.TextEditor | undefined {
  return vscode.window.activeTextEditor;
}

export function onDidChangeActiveTextEditor(
  listener: (editor: vscode.TextEditor | undefined) => unknown,
): vscode.Disposable {
  return vscode.window.onDidChangeActiveTextEditor(listener);
}

/** Runs `task` with a cancellable notification; `report` sets the message line. */
export function withNotificationProgress<T>(
  title: string,
  task: (report: (message: string) => void, token: vscode.CancellationToken) => Promise<T>,
): Thenable<T> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    (progress, token) => task((message) => progress.report({ message }), token),
  );
}

/** A spinner in the status bar area until `done` settles. */
export function withWindowProgress(title: string, done: Promise<unknown>): void {
  void vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title }, () => done);
}

const MARKDOWN_SCHEME = 'companion-markdown';
const markdownDocuments = new Map<string, string>();
let markdownChanged: vscode.EventEmitter<vscode.Uri> | undefined;

/** Read-only Markdown documents (status report, explanations): no "save changes?" on close. */
export function registerMarkdownDocuments(): vscode.Disposable {
  const changed = new vscode.EventEmitter<vscode.Uri>();
  markdownChanged = changed;
  const provider = vscode.workspace.registerTextDocumentContentProvider(MARKDOWN_SCHEME, {
    onDidChange: changed.event,
    provideTextDocumentContent: (uri) => markdownDocuments.get(uri.path) ?? '',
  });
  return vscode.Disposable.from(provider, changed);
}

/** Opens `markdown` rendered beside the editor (the source itself if there is no preview). */
export async function showMarkdown(name: string, markdown: string): Promise<void> {
  const uri = vscode.Uri.from({ scheme: MARKDOWN_SCHEME, path: `/${name}.md` });
  markdownDocuments.set(uri.path, markdown);
  markdownChanged?.fire(uri);
  try {
    await vscode.commands.executeCommand('markdown.showPreviewToSide', uri);
  } catch {
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(document, vscode.ViewColumn.Beside);
  }
}

export function openSettings(query: string): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', query);
}

export function openExternal(url: string): Thenable<boolean> {
  return vscode.env.openExternal(vscode.Uri.parse(url));
}

export function workspaceFolderPaths(): string[] {
  return (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath);
}

export function extensionApi<T>(extensionId: string): vscode.Extension<T> | undefined {
  return vscode.extensions.getExtension<T>(extensionId);
}

export function applyWorkspaceEdit(edit: vscode.WorkspaceEdit): Thenable<boolean> {
  return vscode.workspace.applyEdit(edit);
}

export function isInlineCompletionTriggerAutomatic(kind: vscode.InlineCompletionTriggerKind): boolean {
  return kind === vscode.InlineCompletionTriggerKind.Automatic;
}
