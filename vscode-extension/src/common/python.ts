/**
 * Finds a Python interpreter for the server: the `companion.server.python` setting, the private
 * environment in global storage, the Python extension's active interpreter, then PATH.
 * The pure parts (candidates, probe parsing, the choice) are exported for tests.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import * as os from 'node:os';

export const MIN_PYTHON: readonly [number, number] = [3, 11];

export type CandidateSource = 'setting' | 'private' | 'python-extension' | 'path';

export interface Candidate {
  command: string;
  source: CandidateSource;
}

export interface ProbeResult {
  version: [number, number, number];
  executable: string;
  /** `companion.__version__`, or null when the package does not import. */
  companion: string | null;
}

export interface Probed {
  candidate: Candidate;
  result?: ProbeResult;
  error?: string;
}

export type Decision =
  | { kind: 'ready'; python: string; version: string; companion: string; source: CandidateSource }
  | { kind: 'missing-server'; python: string; version: string; source: CandidateSource }
  | { kind: 'too-old'; python: string; version: string }
  | { kind: 'no-python'; tried: string[]; detail: string };

/** Prints one JSON line; valid on any Python 3 so that an old interpreter still reports itself. */
export const PROBE_SCRIPT = [
  'import sys, json',
  'try:',
  '    import companion',
  "    v = str(getattr(companion, '__version__', 'unknown'))",
  'except Exception:',
  '    v = None',
  "print(json.dumps({'version': list(sys.version_info[:3]), 'executable': sys.executable, 'companion': v}))",
].join('\n');

export function venvPython(venvDir: string, platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32'
    ? path.win32.join(venvDir, 'Scripts', 'python.exe')
    : path.posix.join(venvDir, 'bin', 'python');
}

export function expandHome(command: string, home: string = os.homedir()): string {
  return command === '~' || command.startsWith('~/') ? home + command.slice(1) : command;
}

export function candidates(options: {
  configured: string;
  privateVenv: string;
  pythonExtension?: string;
  platform?: NodeJS.Platform;
}): Candidate[] {
  const platform = options.platform ?? process.platform;
  if (options.configured) {
    return [{ command: expandHome(options.configured), source: 'setting' }];
  }
  const list: Candidate[] = [{ command: venvPython(options.privateVenv, platform), source: 'private' }];
  if (options.pythonExtension) {
    list.push({ command: options.pythonExtension, source: 'python-extension' });
  }
  const onPath = platform === 'win32' ? ['py', 'python'] : ['python3', 'python'];
  list.push(...onPath.map((command) => ({ command, source: 'path' as const })));
  const seen = new Set<string>();
  return list.filter((candidate) => !seen.has(candidate.command) && seen.add(candidate.command));
}

export function parseProbe(stdout: string): ProbeResult | undefined {
  const line = stdout.trim().split(/\r?\n/).pop() ?? '';
  try {
    const parsed = JSON.parse(line) as Partial<ProbeResult>;
    const version = parsed.version;
    if (!Array.isArray(version) || version.length < 2 || typeof parsed.executable !== 'string') {
      return undefined;
    }
    return {
      version: [Number(version[0]), Number(version[1]), Number(version[2] ?? 0)],
      executable: parsed.executable,
      companion: typeof parsed.companion === 'string' ? parsed.companion : null,
    };
  } catch {
    return undefined;
  }
}

export function isSupported(version: readonly number[]): boolean {
  const [major, minor] = version;
  return major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1]);
}

export function versionText(version: readonly number[]): string {
  return version.join('.');
}

/**
 * The first candidate that can run the server; otherwise what the user has to fix. The
 * command is kept as given (not `sys.executable`): a wrapper script or shim stays in charge.
 */
export function decide(probed: Probed[]): Decision {
  const ran = probed.filter((p): p is Probed & { result: ProbeResult } => p.result !== undefined);
  const ready = ran.find((p) => isSupported(p.result.version) && p.result.companion !== null);
  if (ready) {
    return {
      kind: 'ready',
      python: ready.candidate.command,
      version: versionText(ready.result.version),
      companion: ready.result.companion ?? '',
      source: ready.candidate.source,
    };
  }
  const supported = ran.find((p) => isSupported(p.result.version));
  if (supported) {
    return {
      kind: 'missing-server',
      python: supported.candidate.command,
      version: versionText(supported.result.version),
      source: supported.candidate.source,
    };
  }
  if (ran.length > 0) {
    return { kind: 'too-old', python: ran[0].candidate.command, version: versionText(ran[0].result.version) };
  }
  const detail = probed.map((p) => `${p.candidate.command}: ${p.error ?? 'no answer'}`).join('; ');
  return { kind: 'no-python', tried: probed.map((p) => p.candidate.command), detail };
}

export function probe(candidate: Candidate, timeoutMs = 20000): Promise<Probed> {
  return new Promise((resolve) => {
    execFile(
      candidate.command,
      ['-c', PROBE_SCRIPT],
      { timeout: timeoutMs, windowsHide: true },
      (err, stdout, stderr) => {
        const result = err ? undefined : parseProbe(String(stdout));
        const error = err ? (String(stderr).trim().split('\n').pop() || err.message) : undefined;
        resolve({ candidate, result, error: result ? undefined : error ?? 'unreadable probe output' });
      },
    );
  });
}

/** Probes in order and stops at the first interpreter that can run the server. */
export async function discover(list: Candidate[]): Promise<{ decision: Decision; probed: Probed[] }> {
  const probed: Probed[] = [];
  for (const candidate of list) {
    const result = await probe(candidate);
    probed.push(result);
    if (result.result && isSupported(result.result.version) && result.result.companion !== null) {
      break;
    }
  }
  return { decision: decide(probed), probed };
}
