/**
 * Partial accepts of inline suggestions (the next word with Ctrl+→, the next line) for the
 * server's local history. A full accept runs the item's own `companion.accepted` command;
 * a partial one runs nothing, so the inline provider the language client registers gets a
 * `handleDidPartiallyAcceptCompletionItem` hook that sends the same command with
 * `{ id, acceptedChars }`.
 *
 * VS Code calls that hook only for extensions with the `inlineCompletionsAdditions` API
 * proposal enabled; elsewhere it stays silent and the server sees full accepts only.
 */

export const ACCEPT_COMMAND = 'companion.accepted';

export interface AcceptArgs {
  id: string;
  source?: string;
  acceptedChars?: number;
}

interface CommandLike {
  command?: unknown;
  arguments?: unknown[];
}

/** The first argument of an item's accept command (it carries the suggestion id). */
export function acceptArgs(item: unknown): AcceptArgs | undefined {
  const command = (item as { command?: CommandLike } | undefined)?.command;
  if (!command || command.command !== ACCEPT_COMMAND || !Array.isArray(command.arguments)) {
    return undefined;
  }
  const first = command.arguments[0] as { id?: unknown; source?: unknown } | undefined;
  if (!first || typeof first.id !== 'string') {
    return undefined;
  }
  return typeof first.source === 'string' ? { id: first.id, source: first.source } : { id: first.id };
}

/**
 * The accepted length from either form VS Code passes: a number (older releases) or a
 * `PartialAcceptInfo` `{ kind, acceptedLength }` (newer ones call the hook with both).
 */
export function acceptedLength(info: unknown): number | undefined {
  const value = typeof info === 'number' ? info : (info as { acceptedLength?: unknown } | undefined)?.acceptedLength;
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Sends each partial accept once, and only when more of the suggestion was kept. */
export class PartialAcceptReporter {
  private readonly sent = new WeakMap<object, number>();

  constructor(private readonly send: (args: AcceptArgs) => unknown) {}

  /** True when a `companion.accepted` went to the server. */
  handle(item: unknown, info: unknown): boolean {
    const args = acceptArgs(item);
    const length = acceptedLength(info);
    if (!args || length === undefined || typeof item !== 'object' || item === null) {
      return false;
    }
    if ((this.sent.get(item) ?? 0) >= length) {
      return false; // the same accept reported twice (number, then info)
    }
    this.sent.set(item, length);
    void Promise.resolve()
      .then(() => this.send({ ...args, acceptedChars: length }))
      .catch(() => undefined); // history only: a failed report must never reach the user
    return true;
  }
}

type Registration = [unknown, unknown];
interface ProviderFeature {
  registerLanguageProvider?: (...args: unknown[]) => Registration;
}

/**
 * Gives every inline completion provider the client's feature registers from now on the
 * partial-accept hook. `feature` is the client's `textDocument/inlineCompletion` feature
 * (vscode-languageclient 11: `registerLanguageProvider` returns `[disposable, provider]`).
 * False when the feature does not look like that: nothing is changed then.
 */
export function attachPartialAccept(feature: unknown, reporter: PartialAcceptReporter): boolean {
  const target = feature as ProviderFeature | undefined;
  const original = target?.registerLanguageProvider;
  if (!target || typeof original !== 'function') {
    return false;
  }
  target.registerLanguageProvider = function (this: unknown, ...args: unknown[]): Registration {
    const registration = original.apply(this, args);
    const provider = Array.isArray(registration) ? registration[1] : undefined;
    if (provider && typeof provider === 'object') {
      (provider as Record<string, unknown>).handleDidPartiallyAcceptCompletionItem = (item: unknown, info: unknown) => {
        reporter.handle(item, info);
      };
    }
    return registration;
  };
  return true;
}
