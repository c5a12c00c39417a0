/**
 * Errors the user can act on, each shown once per session (a restart loop must not stack up
 * notifications). `Notifier.reset(key)` lets a fixed problem speak again if it comes back.
 */
import * as vscodeapi from './vscodeapi';

export type Severity = 'error' | 'warning' | 'info';

export interface Action {
  title: string;
  run: () => unknown;
}

type Show = (severity: Severity, message: string, titles: string[]) => Thenable<string | undefined>;

const defaultShow: Show = (severity, message, titles) => {
  switch (severity) {
    case 'error':
      return vscodeapi.showErrorMessage(message, ...titles);
    case 'warning':
      return vscodeapi.showWarningMessage(message, ...titles);
    default:
      return vscodeapi.showInformationMessage(message, ...titles);
  }
};

export class Notifier {
  private readonly shown = new Set<string>();

  constructor(private readonly show: Show = defaultShow) {}

  /** Shows the message unless `key` was shown before; runs the action the user picks. */
  async once(key: string, severity: Severity, message: string, actions: Action[] = []): Promise<boolean> {
    if (this.shown.has(key)) {
      return false;
    }
    this.shown.add(key);
    const picked = await this.show(severity, message, actions.map((action) => action.title));
    await actions.find((action) => action.title === picked)?.run();
    return true;
  }

  reset(key: string): void {
    this.shown.delete(key);
  }

  hasShown(key: string): boolean {
    return this.shown.has(key);
  }
}

/** The last stderr lines as a message suffix. */
export function stderrSuffix(lines: string[], count = 5): string {
  const last = lines.slice(-count).map((line) => line.trim()).filter(Boolean);
  return last.length > 0 ? ` Last output: ${last.join(' ⏎ ')}` : '';
}
