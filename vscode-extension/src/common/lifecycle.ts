/**
 * The server's life: find Python, offer the private install, start the client, poll
 * `companion/status` for the status bar, and say once what went wrong and what to do.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as log from './log';
import * as python from './python';
import * as settings from './settings';
import * as vscodeapi from './vscodeapi';
import { CompanionClient } from './server';
import { Notifier, stderrSuffix } from './notify';
import { StatusBar } from './statusBar';
import { STATUS_REQUEST, ServerStatus, normalizeStatus } from './status';
import { installPlan, runPlan } from './install';
import { FOCUS_NOTIFICATION, FocusReporter, FocusedEditor } from './focus';

const POLL_MS = 4000;
/** A status request unanswered this long counts once; UNANSWERED_LIMIT in a row: hung. */
const STATUS_TIMEOUT_MS = 5000;
const ANSWER_REFRESH_MS = 1000;
const UNANSWERED_LIMIT = 2;

class StatusTimeout extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StatusTimeout(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
const PYTHON_DOWNLOAD = 'https://www.python.org/downloads/';

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: unknown): { path: string };
    resolveEnvironment(env: unknown): Promise<{ executable?: { uri?: { fsPath: string } } } | undefined>;
  };
}

/** The Python extension's active interpreter, when that extension is installed. */
export async function pythonExtensionInterpreter(): Promise<string | undefined> {
  const extension = vscodeapi.extensionApi<PythonExtensionApi>('ms-python.python');
  if (!extension) {
    return undefined;
  }
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    const active = api.environments?.getActiveEnvironmentPath();
    if (!active) {
      return undefined;
    }
    const resolved = await api.environments?.resolveEnvironment(active);
    return resolved?.executable?.uri?.fsPath ?? active.path;
  } catch (err) {
    log.warn(`Python extension: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** A `server` folder (or a wheel in it) shipped next to the extension. */
export function bundledServer(extensionPath: string): string | undefined {
  const folder = path.join(extensionPath, 'server');
  if (!fs.existsSync(folder)) {
    return undefined;
  }
  const wheel = fs.readdirSync(folder).find((name) => name.endsWith('.whl'));
  if (wheel) {
    return path.join(folder, wheel);
  }
  return fs.existsSync(path.join(folder, 'pyproject.toml')) ? folder : undefined;
}

export class Companion {
  readonly client: CompanionClient;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private unanswered = 0; // status polls in a row that got no answer
  private lastRefresh = 0;
  private refreshQueued = false;
  private starting: Promise<void> | undefined;
  private stopped = false;
  private readonly focus = new FocusReporter(
    (params) => this.client.notify(FOCUS_NOTIFICATION, params),
    (languageId) => settings.isEnabledFor(languageId, 'inline'),
  );

  constructor(
    private readonly globalStoragePath: string,
    private readonly extensionPath: string,
    readonly statusBar: StatusBar,
    private readonly notifier: Notifier = new Notifier(),
  ) {
    this.client = new CompanionClient({
      onLoading: (message, percentage) => this.statusBar.loadingModel(message, percentage),
      onLoaded: () => {
        this.statusBar.loaded();
        void this.refreshStatus();
      },
      onAnswered: () => this.refreshSoon(),
      onCrashed: (tail) => this.reportCrash(tail),
    });
  }

  get venvDir(): string {
    return path.join(this.globalStoragePath, 'venv');
  }

  /** Starts once; concurrent callers share the attempt. */
  start(): Promise<void> {
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  async restart(explicit = false): Promise<void> {
    if (explicit) {
      for (const key of ['no-python', 'too-old', 'missing-server', 'start-failed', 'crashed', 'model-failed']) {
        this.notifier.reset(key);
      }
    }
    if (this.starting) {
      await this.starting;
    }
    log.info('Restarting the server');
    await this.client.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopPolling();
    await this.client.stop();
    this.statusBar.disabled();
  }

  async status(): Promise<ServerStatus | undefined> {
    try {
      // An empty object: older servers (plain pygls) left a request without params unanswered.
      const raw = await withTimeout(this.client.request<unknown>(STATUS_REQUEST, {}), STATUS_TIMEOUT_MS);
      this.unanswered = 0;
      return raw === undefined ? undefined : normalizeStatus(raw);
    } catch (err) {
      log.warn(`${STATUS_REQUEST}: ${err instanceof Error ? err.message : String(err)}`);
      if (err instanceof StatusTimeout && ++this.unanswered >= UNANSWERED_LIMIT) {
        // A server that stops answering is treated like one that exited: it is killed,
        // and the close handler restarts it (or reports it after repeated stops).
        this.unanswered = 0;
        log.error(`The Companion server has not answered for ${(UNANSWERED_LIMIT * STATUS_TIMEOUT_MS) / 1000} s; restarting it.`);
        this.client.kill();
      }
      return undefined;
    }
  }

  /** After an answer: the status bar's latency, at most once a second (not per keystroke). */
  private refreshSoon(): void {
    if (this.refreshQueued) {
      return;
    }
    this.refreshQueued = true;
    const wait = Math.max(0, ANSWER_REFRESH_MS - (Date.now() - this.lastRefresh));
    setTimeout(() => {
      this.refreshQueued = false;
      void this.refreshStatus();
    }, wait);
  }

  async refreshStatus(): Promise<ServerStatus | undefined> {
    this.lastRefresh = Date.now();
    const status = await this.status();
    if (status) {
      this.statusBar.update(status);
      this.checkDegraded(status);
    }
    return status;
  }

  private async doStart(): Promise<void> {
    this.stopped = false;
    this.statusBar.starting('looking for Python');
    const clientSettings = settings.currentClientSettings();
    const candidates = python.candidates({
      configured: clientSettings.python,
      privateVenv: this.venvDir,
      pythonExtension: clientSettings.python ? undefined : await pythonExtensionInterpreter(),
    });
    const { decision, probed } = await python.discover(candidates);
    for (const p of probed) {
      log.info(
        `Python ${p.candidate.command} (${p.candidate.source}): ` +
          (p.result
            ? `${python.versionText(p.result.version)}, companion ${p.result.companion ?? 'not installed'}`
            : `unusable: ${p.error}`),
      );
    }
    switch (decision.kind) {
      case 'ready':
        return this.launch(decision.python);
      case 'no-python':
        this.statusBar.problem('Companion: no Python', 'Companion needs Python 3.11 or newer.');
        void this.notifier.once(
          'no-python',
          'error',
          `Companion needs Python ${python.MIN_PYTHON.join('.')} or newer and found none (tried ${decision.tried.join(', ')}).`,
          [
            { title: 'Set Interpreter', run: () => vscodeapi.openSettings('companion.server.python') },
            { title: 'Get Python', run: () => vscodeapi.openExternal(PYTHON_DOWNLOAD) },
          ],
        );
        return;
      case 'too-old':
        this.statusBar.problem('Companion: Python too old', `${decision.python} is Python ${decision.version}.`);
        void this.notifier.once(
          'too-old',
          'error',
          `Companion needs Python ${python.MIN_PYTHON.join('.')} or newer; ${decision.python} is ${decision.version}.`,
          [
            { title: 'Set Interpreter', run: () => vscodeapi.openSettings('companion.server.python') },
            { title: 'Get Python', run: () => vscodeapi.openExternal(PYTHON_DOWNLOAD) },
          ],
        );
        return;
      case 'missing-server':
        this.statusBar.problem('Companion: not installed', `The server is not installed for ${decision.python}.`);
        void this.notifier.once(
          'missing-server',
          'warning',
          `The Companion server is not installed for ${decision.python} (Python ${decision.version}). ` +
            'Install it, with its embedded model, into a private environment?',
          [
            { title: 'Install', run: () => this.install(decision.python) },
            { title: 'Set Interpreter', run: () => vscodeapi.openSettings('companion.server.python') },
          ],
        );
        return;
    }
  }

  private async launch(pythonPath: string): Promise<void> {
    this.statusBar.starting('starting the server');
    try {
      await this.client.start(pythonPath);
    } catch (err) {
      const tail = this.client.stderr.lines();
      log.error(`The server failed to start: ${err instanceof Error ? err.message : String(err)}`);
      tail.forEach((line) => log.error(`  ${line}`));
      this.statusBar.problem('Companion: server failed', 'The server failed to start; see the log.');
      void this.notifier.once(
        'start-failed',
        'error',
        `The Companion server failed to start (${pythonPath}).${stderrSuffix(tail)}`,
        [
          { title: 'Show Log', run: () => log.showLog() },
          { title: 'Restart', run: () => this.restart(true) },
        ],
      );
      return;
    }
    this.notifier.reset('crashed');
    this.focus.reset();
    this.reportFocus(vscodeapi.activeTextEditor());
    await this.refreshStatus();
    this.startPolling();
  }

  /** The editor the user looks at (at start, and on every change of active editor). */
  reportFocus(editor: FocusedEditor | undefined): void {
    if (this.client.running) {
      this.focus.report(editor);
    }
  }

  private reportCrash(tail: string[]): void {
    this.stopPolling();
    this.statusBar.problem('Companion: server stopped', 'The server stopped repeatedly; see the log.');
    void this.notifier.once('crashed', 'error', `The Companion server keeps stopping.${stderrSuffix(tail)}`, [
      { title: 'Show Log', run: () => log.showLog() },
      { title: 'Restart', run: () => this.restart(true) },
    ]);
  }

  private checkDegraded(status: ServerStatus): void {
    const configured = settings.currentServerSettings().backend;
    if ((status.state === 'templates' || status.state === 'degraded') && configured !== 'templates') {
      void this.notifier.once(
        'model-failed',
        'warning',
        status.state === 'templates'
          ? `Companion could not load a model${status.reason ? ` (${status.reason})` : ''}; it serves templates only.`
          : `Companion runs a smaller model than configured${status.reason ? ` (${status.reason})` : ''}.`,
        [
          { title: 'Show Status', run: () => vscodeapi.executeCommand('companion.showStatus') },
          { title: 'Show Log', run: () => log.showLog() },
          { title: 'Settings', run: () => vscodeapi.openSettings('companion') },
        ],
      );
    }
  }

  /** Creates `<globalStorage>/venv` with `basePython` and installs the server and model there. */
  async install(basePython?: string): Promise<boolean> {
    let base = basePython;
    if (!base) {
      const { decision } = await python.discover(
        python.candidates({ configured: '', privateVenv: '', pythonExtension: await pythonExtensionInterpreter() }),
      );
      if (decision.kind === 'ready' || decision.kind === 'missing-server') {
        base = decision.python;
      } else {
        await vscodeapi.showErrorMessage(`Companion needs Python ${python.MIN_PYTHON.join('.')} or newer to install the server.`);
        return false;
      }
    }
    fs.mkdirSync(this.globalStoragePath, { recursive: true });
    const plan = installPlan({
      basePython: base,
      venvDir: this.venvDir,
      source: settings.currentClientSettings().installSource,
      bundled: bundledServer(this.extensionPath),
      home: os.homedir(),
    });
    const outcome = await vscodeapi.withNotificationProgress('Companion: installing the server', async (report, token) => {
      const abort = new AbortController();
      token.onCancellationRequested(() => abort.abort());
      return runPlan(plan, { onStep: report, onLine: (line) => log.info(line) }, abort.signal);
    });
    if (!outcome.ok) {
      log.error(`Install failed at "${outcome.step}"`);
      if (!outcome.cancelled) {
        const picked = await vscodeapi.showErrorMessage(
          `Installing the Companion server failed (${outcome.step}).${stderrSuffix(outcome.tail, 3)}`,
          'Show Log',
        );
        if (picked === 'Show Log') {
          log.showLog();
        }
      }
      return false;
    }
    log.info(`Installed the server into ${this.venvDir}`);
    await this.restart(true);
    return true;
  }

  private startPolling(): void {
    this.stopPolling();
    this.pollTimer = setInterval(() => {
      if (!this.stopped && this.client.running) {
        void this.refreshStatus();
      }
    }, POLL_MS);
  }

  private stopPolling(): void {
    if (this.pollTimer) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
    }
  }
}
