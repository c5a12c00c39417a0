/**
 * The `companion` settings section: what the server receives, what only the client reads,
 * and which changes need a server restart.
 */
import * as vscodeapi from './vscodeapi';

export const SECTION = 'companion';

/**
 * Keys whose change needs a new server process: a new interpreter or install source. A new
 * model, backend or engine setting does not: the server reads it from
 * workspace/didChangeConfiguration and reloads its engine host itself (one reload path).
 */
export const RESTART_KEYS = ['server.python', 'server.installSource'] as const;

export type TriggerMode = 'automatic' | 'onDemand';

export interface ClientSettings {
  python: string;
  installSource: string;
  triggerMode: TriggerMode;
  debounceMs: number;
}

/** The minimal reader both `WorkspaceConfiguration` and test fakes satisfy. */
export interface ConfigReader {
  get<T>(key: string): T | undefined;
}

export function readClientSettings(config: ConfigReader): ClientSettings {
  const triggerMode = config.get<string>('inline.triggerMode') === 'onDemand' ? 'onDemand' : 'automatic';
  // 0 by default: the server owns the debounce (adaptive, from its own latency); this is
  // an extra pause for users who want fewer requests.
  const debounceMs = Number(config.get<number>('inline.debounceMs') ?? 0);
  return {
    python: (config.get<string>('server.python') ?? '').trim(),
    installSource: (config.get<string>('server.installSource') ?? '').trim(),
    triggerMode,
    debounceMs: Number.isFinite(debounceMs) ? Math.min(Math.max(debounceMs, 0), 5000) : 0,
  };
}

/**
 * The whole `companion` object as plain JSON: sent as `initializationOptions` and as the answer
 * to `workspace/configuration`. The server ignores the client-only keys.
 */
export function toServerSettings(config: object): Record<string, unknown> {
  return JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
}

export function affectsRestart(affects: (section: string) => boolean): boolean {
  return RESTART_KEYS.some((key) => affects(`${SECTION}.${key}`));
}

export function currentClientSettings(): ClientSettings {
  return readClientSettings(vscodeapi.getConfiguration(SECTION));
}

export function currentServerSettings(): Record<string, unknown> {
  return toServerSettings(vscodeapi.getConfiguration(SECTION));
}

/** `companion.enable` and `companion.inline.enable` honour `[language]` overrides. */
export function isEnabledFor(languageId: string, feature: 'any' | 'inline' = 'any'): boolean {
  const config = vscodeapi.getConfiguration(SECTION, { languageId });
  if (config.get<boolean>('enable') === false) {
    return false;
  }
  return feature === 'inline' ? config.get<boolean>('inline.enable') !== false : true;
}

export async function toggleInline(): Promise<boolean> {
  const config = vscodeapi.getConfiguration(SECTION);
  const enabled = config.get<boolean>('inline.enable') !== false;
  await config.update('inline.enable', !enabled, true);
  return !enabled;
}
