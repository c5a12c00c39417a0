/**
 * The language client: spawns `<python> -m companion serve`, keeps the last lines of its
 * stderr for error messages, gates requests by the client-only settings (enable per language,
 * inline trigger mode and debounce), turns the server's work-done progress into the
 * status bar spinner and reports partial accepts of inline suggestions (partialAccept.ts).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { StreamInfo } from 'vscode-languageclient/node';
import {
  CloseAction,
  CloseHandlerResult,
  ErrorAction,
  ErrorHandlerResult,
  LanguageClient,
  LanguageClientOptions,
  ServerCapabilities,
  State,
  StaticFeature,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressCreateRequest,
  WorkDoneProgressReport,
  ExecuteCommandRequest,
  InlineCompletionRequest,
} from 'vscode-languageclient/node';
import * as log from './log';
import * as settings from './settings';
import * as vscodeapi from './vscodeapi';
import { delay } from './debounce';
import { LineSplitter, TailBuffer } from './tail';
import { ACCEPT_COMMAND, PartialAcceptReporter, attachPartialAccept } from './partialAccept';

export const CLIENT_ID = 'companion';
export const LOADING_TITLE = 'Companion: loading model';

export interface ProgressEvents {
  onLoading(message: string, percentage?: number): void;
  onLoaded(): void;
}

export interface ServerEvents extends ProgressEvents {
  /** After each answered inline completion: a good moment to refresh the latency. */
  onAnswered(): void;
  /** The process ended and the client gave up restarting it. */
  onCrashed(tail: string[]): void;
}

export function serverArgs(): string[] {
  return ['-m', 'companion', 'serve'];
}

/**
 * Takes over `window/workDoneProgress/create` (initialized after the client's own progress
 * feature, so its handler wins): the loading progress drives the status bar spinner.
 */
class LoadingProgressFeature implements StaticFeature {
  constructor(
    private readonly client: LanguageClient,
    private readonly events: ProgressEvents,
  ) {}

  fillClientCapabilities(capabilities: { window?: { workDoneProgress?: boolean } }): void {
    capabilities.window = { ...(capabilities.window ?? {}), workDoneProgress: true };
  }

  getState(): { kind: 'static' } {
    return { kind: 'static' };
  }

  initialize(): void {
    this.client.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      let title = '';
      let finish: (() => void) | undefined;
      const subscription = this.client.onProgress(WorkDoneProgress.type, params.token, (value) => {
        if (value.kind === 'begin') {
          const begin = value as WorkDoneProgressBegin;
          title = begin.title;
          vscodeapi.withWindowProgress(title, new Promise<void>((resolve) => (finish = resolve)));
          if (title === LOADING_TITLE) {
            this.events.onLoading(begin.message ?? '', begin.percentage);
          }
        } else if (value.kind === 'report') {
          const report = value as WorkDoneProgressReport;
          if (title === LOADING_TITLE) {
            this.events.onLoading(report.message ?? '', report.percentage);
          }
        } else {
          finish?.();
          subscription.dispose();
          if (title === LOADING_TITLE) {
            this.events.onLoaded();
          }
        }
      });
    });
  }

  clear(): void {}
}

export class CompanionClient {
  private client: LanguageClient | undefined;
  private process: ChildProcess | undefined;
  readonly stderr = new TailBuffer(20);
  private crashes: number[] = [];
  private readonly partialAccepts = new PartialAcceptReporter((args) =>
    this.executeCommand(ACCEPT_COMMAND, [args]),
  );

  constructor(private readonly events: ServerEvents) {}

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  get capabilities(): ServerCapabilities | undefined {
    return this.client?.initializeResult?.capabilities;
  }

  /** Starts the server with `python`; rejects with the stderr tail in the message on failure. */
  async start(python: string): Promise<void> {
    await this.stop();
    this.stderr.clear();
    // Streams rather than the process: the client would copy stderr into the log unsorted;
    // here each line keeps its level, and the last lines are kept for error messages.
    const serverOptions = async (): Promise<StreamInfo> => {
      log.info(`Starting ${python} ${serverArgs().join(' ')}`);
      const child = spawn(python, serverArgs(), {
        env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8' },
        windowsHide: true,
      });
      const levels = new log.ServerLogLevels();
      const lines = new LineSplitter((line) => {
        this.stderr.push(line);
        const { level, text } = levels.classify(line);
        log[level](`[server] ${text}`);
      });
      child.stderr.on('data', (chunk: Buffer) => lines.write(chunk.toString()));
      child.on('error', (err) => this.stderr.push(err.message));
      child.on('exit', (code, signal) => {
        lines.flush();
        log.info(`Server exited (code ${code}, signal ${signal ?? 'none'})`);
      });
      this.process = child;
      return { reader: child.stdout, writer: child.stdin };
    };
    const client = new LanguageClient(CLIENT_ID, 'Companion', serverOptions, this.clientOptions());
    client.registerFeature(new LoadingProgressFeature(client, this.events));
    if (!attachPartialAccept(client.getFeature(InlineCompletionRequest.method), this.partialAccepts)) {
      log.warn('Partial accepts of inline suggestions are not reported (unexpected language client)');
    }
    this.client = client;
    try {
      await client.start();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await this.stop();
      throw new Error(message);
    }
    log.info(`Server started: ${JSON.stringify(client.initializeResult?.serverInfo ?? {})}`);
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(3000);
      } catch (err) {
        log.warn(`Stopping the server: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (this.process && this.process.exitCode === null) {
      this.process.kill();
    }
    this.process = undefined;
  }

  /** Ends a server that stopped answering; the close handler then restarts it. */
  kill(): void {
    if (this.process && this.process.exitCode === null) {
      this.process.kill('SIGKILL');
    }
  }

  async request<T>(method: string, params?: unknown): Promise<T | undefined> {
    if (!this.client || !this.running) {
      return undefined;
    }
    return params === undefined
      ? this.client.sendRequest<T>(method)
      : this.client.sendRequest<T>(method, params);
  }

  /** A notification to the server; dropped while it is not running. */
  notify(method: string, params: unknown): void {
    if (this.client && this.running) {
      void this.client.sendNotification(method, params).catch((err: unknown) => {
        log.warn(`${method}: ${err instanceof Error ? err.message : String(err)}`);
      });
    }
  }

  /** `workspace/executeCommand` straight to the server. */
  async executeCommand<T>(command: string, args: unknown[]): Promise<T | undefined> {
    if (!this.client || !this.running) {
      return undefined;
    }
    return (await this.client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args })) as T;
  }

  languageClient(): LanguageClient | undefined {
    return this.client;
  }

  private clientOptions(): LanguageClientOptions {
    const events = this.events;
    const logChannel = log.logChannel();
    return {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: logChannel,
      traceOutputChannel: logChannel,
      initializationOptions: settings.currentServerSettings(),
      synchronize: { configurationSection: settings.SECTION },
      errorHandler: {
        error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue }),
        closed: (): CloseHandlerResult => {
          const now = Date.now();
          this.crashes = [...this.crashes.filter((t) => now - t < 180_000), now];
          if (this.crashes.length <= 3) {
            log.warn('The server stopped; restarting it.');
            return { action: CloseAction.Restart, handled: true };
          }
          events.onCrashed(this.stderr.lines());
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          if (!settings.isEnabledFor(document.languageId, 'inline')) {
            return null;
          }
          const { triggerMode, debounceMs } = settings.currentClientSettings();
          const automatic = vscodeapi.isInlineCompletionTriggerAutomatic(context.triggerKind);
          if (automatic && triggerMode === 'onDemand') {
            return null;
          }
          if (automatic && debounceMs > 0 && !(await delay(debounceMs, () => token.isCancellationRequested))) {
            return null;
          }
          const result = await next(document, position, context, token);
          events.onAnswered();
          return result;
        },
        provideCompletionItem: (document, position, context, token, next) =>
          settings.isEnabledFor(document.languageId) ? next(document, position, context, token) : null,
        provideHover: (document, position, token, next) =>
          settings.isEnabledFor(document.languageId) ? next(document, position, token) : null,
        provideCodeActions: (document, range, context, token, next) =>
          settings.isEnabledFor(document.languageId) ? next(document, range, context, token) : null,
      },
    };
  }
}
