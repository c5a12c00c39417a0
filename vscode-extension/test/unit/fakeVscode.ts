/**
 * A small stand-in for the `vscode` module, enough for the wrapper module (vscodeapi.ts) to
 * load and for tests to drive settings and see what was shown.
 */
type Listener = (...args: unknown[]) => unknown;

export const recorded = {
  messages: [] as { severity: string; message: string; items: string[] }[],
  commands: new Map<string, Listener>(),
  executed: [] as { command: string; args: unknown[] }[],
  updates: [] as { key: string; value: unknown }[],
  answer: undefined as string | undefined,
  inlineProviders: [] as Record<string, unknown>[],
};

/** Settings of the `companion` section, and `[language]` overrides. */
export const settingsStore = {
  values: {} as Record<string, unknown>,
  languages: {} as Record<string, Record<string, unknown>>,
  reset(): void {
    this.values = {};
    this.languages = {};
    recorded.messages = [];
    recorded.executed = [];
    recorded.updates = [];
    recorded.answer = undefined;
  },
};

export class CancellationError extends Error {}

export const languages = {
  registerInlineCompletionItemProvider(_selector: unknown, provider: Record<string, unknown>) {
    recorded.inlineProviders.push(provider);
    return { dispose: () => undefined };
  },
};

export class ThemeColor {
  constructor(public readonly id: string) {}
}

export const StatusBarAlignment = { Left: 1, Right: 2 };
export const ProgressLocation = { SourceControl: 1, Window: 10, Notification: 15 };
export const InlineCompletionTriggerKind = { Invoke: 0, Automatic: 1 };
export const ViewColumn = { Active: -1, Beside: -2 };

export class FakeStatusBarItem {
  text = '';
  tooltip: unknown;
  name: string | undefined;
  command: unknown;
  backgroundColor: ThemeColor | undefined;
  accessibilityInformation: unknown;
  visible = false;
  disposed = false;
  constructor(public readonly id?: string) {}
  show(): void {
    this.visible = true;
  }
  hide(): void {
    this.visible = false;
  }
  dispose(): void {
    this.disposed = true;
  }
}

function show(severity: string) {
  return (message: string, ...items: string[]) => {
    recorded.messages.push({ severity, message, items });
    return Promise.resolve(recorded.answer);
  };
}

export const window = {
  createOutputChannel: (name: string) => ({
    name,
    lines: [] as string[],
    info(line: string) {
      this.lines.push(line);
    },
    warn(line: string) {
      this.lines.push(line);
    },
    error(line: string) {
      this.lines.push(line);
    },
    show() {},
    dispose() {},
  }),
  createStatusBarItem: (id: string) => new FakeStatusBarItem(id),
  showErrorMessage: show('error'),
  showWarningMessage: show('warning'),
  showInformationMessage: show('info'),
  withProgress: (_options: unknown, task: (progress: unknown, token: unknown) => unknown) =>
    task({ report() {} }, { isCancellationRequested: false, onCancellationRequested() {} }),
  activeTextEditor: undefined,
};

function configuration(scope?: { languageId?: string } | null) {
  const language = scope?.languageId ? settingsStore.languages[scope.languageId] ?? {} : {};
  return {
    get<T>(key: string, fallback?: T): T | undefined {
      if (key in language) {
        return language[key] as T;
      }
      return key in settingsStore.values ? (settingsStore.values[key] as T) : fallback;
    },
    update(key: string, value: unknown) {
      settingsStore.values[key] = value;
      recorded.updates.push({ key, value });
      return Promise.resolve();
    },
    toJSON() {
      return { ...settingsStore.values };
    },
  };
}

export const workspace = {
  getConfiguration: (_section: string, scope?: { languageId?: string } | null) => configuration(scope),
  onDidChangeConfiguration: () => ({ dispose() {} }),
  workspaceFolders: undefined,
};

export const commands = {
  registerCommand(command: string, callback: Listener) {
    recorded.commands.set(command, callback);
    return { dispose: () => recorded.commands.delete(command) };
  },
  executeCommand(command: string, ...args: unknown[]) {
    recorded.executed.push({ command, args });
    return Promise.resolve(recorded.commands.get(command)?.(...args));
  },
};

export const extensions = { getExtension: () => undefined };
export const env = { openExternal: () => Promise.resolve(true) };
export const Uri = { parse: (value: string) => ({ toString: () => value }) };
