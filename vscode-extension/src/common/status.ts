/**
 * The `companion/status` answer: its shape, the status bar text and the Markdown report.
 * Pure functions; the status bar item itself lives in statusBar.ts.
 */

export type ServerState = 'loading' | 'ready' | 'degraded' | 'restarting' | 'templates';
export type VerdictLevel = 'ok' | 'slow' | 'degraded';

export interface Verdict {
  level: VerdictLevel;
  reasons: string[];
  /** The inline p95 past which the server counts as slow, in ms. */
  slowP95Ms: number | null;
}

export interface ServerStatus {
  backend: string;
  model: string;
  device: string;
  state: ServerState;
  reason: string;
  memoryMB: number;
  requests: { inline: number; completion: number; hover: number; cancelled: number };
  latency: { p50Ms: number | null; p95Ms: number | null; lastMs: number | null };
  shown: number;
  accepted: number;
  partiallyAccepted: number;
  rejected: number;
  /** Share of shown suggestions kept in whole or in part (null before any was shown). */
  acceptanceRate: number | null;
  verdict: Verdict;
  steps: string[];
  /** The engine host (the process that holds the model): its memory and its last crash. */
  host: { memoryMB: number; lastCrash: string; safeMode: boolean };
}

export const STATUS_REQUEST = 'companion/status';

/** Fills what an older or partial server leaves out, so rendering never throws. */
export function normalizeStatus(raw: unknown): ServerStatus {
  const value = (raw ?? {}) as Partial<ServerStatus>;
  const num = (n: unknown): number => (typeof n === 'number' && Number.isFinite(n) ? n : 0);
  const opt = (n: unknown): number | null => (typeof n === 'number' && Number.isFinite(n) ? n : null);
  const states: ServerState[] = ['loading', 'ready', 'degraded', 'restarting', 'templates'];
  const levels: VerdictLevel[] = ['ok', 'slow', 'degraded'];
  const verdict = (value.verdict ?? {}) as Partial<Verdict> & { thresholds?: { slowP95Ms?: unknown } };
  return {
    backend: String(value.backend ?? 'unknown'),
    model: String(value.model ?? ''),
    device: String(value.device ?? ''),
    state: states.includes(value.state as ServerState) ? (value.state as ServerState) : 'ready',
    reason: String(value.reason ?? ''),
    memoryMB: num(value.memoryMB),
    requests: {
      inline: num(value.requests?.inline),
      completion: num(value.requests?.completion),
      hover: num(value.requests?.hover),
      cancelled: num(value.requests?.cancelled),
    },
    latency: {
      p50Ms: opt(value.latency?.p50Ms),
      p95Ms: opt(value.latency?.p95Ms),
      lastMs: opt(value.latency?.lastMs),
    },
    shown: num(value.shown),
    accepted: num(value.accepted),
    partiallyAccepted: num(value.partiallyAccepted),
    rejected: num(value.rejected),
    acceptanceRate: opt(value.acceptanceRate),
    verdict: {
      level: levels.includes(verdict.level as VerdictLevel) ? (verdict.level as VerdictLevel) : 'ok',
      reasons: Array.isArray(verdict.reasons) ? verdict.reasons.map(String) : [],
      slowP95Ms: opt(verdict.thresholds?.slowP95Ms),
    },
    steps: Array.isArray(value.steps) ? value.steps.map(String) : [],
    host: {
      memoryMB: num(value.host?.memoryMB),
      lastCrash: String(value.host?.lastCrash ?? ''),
      safeMode: value.host?.safeMode === true,
    },
  };
}

/** `org/Some-Model-GGUF/file.Q4.gguf` → `file.Q4`, cut to a status-bar-sized name. */
export function shortModelName(model: string, max = 28): string {
  const base = model.split(/[\\/]/).filter(Boolean).pop() ?? '';
  const name = base.replace(/\.gguf$/i, '') || 'default';
  return name.length > max ? `${name.slice(0, max - 1)}…` : name;
}

export function formatMs(ms: number | null): string {
  if (ms === null) {
    return '—';
  }
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export interface BarView {
  text: string;
  warning: boolean;
  tooltip: string;
}

export function statusBarView(status: ServerStatus): BarView {
  const health =
    status.verdict.level !== 'ok' && status.verdict.reasons.length > 0
      ? `; ${status.verdict.level}: ${status.verdict.reasons[0]}`
      : '';
  const tooltip = `Companion: ${status.state}${status.reason ? ` — ${status.reason}` : ''}${health} (click for options)`;
  switch (status.state) {
    case 'loading':
      return { text: `$(loading~spin) ${status.backend} · loading`, warning: false, tooltip };
    case 'restarting':
      // The engine crashed or hung: templates answer while it restarts (reason says why).
      return { text: `$(sync~spin) ${status.backend} · engine restarting`, warning: true, tooltip };
    case 'templates':
      return { text: '$(warning) Companion: templates', warning: true, tooltip };
    case 'degraded':
      return {
        text: `$(warning) ${status.backend} · ${shortModelName(status.model)} · degraded`,
        warning: true,
        tooltip,
      };
    default:
      return {
        text: `$(sparkle) ${status.backend} · ${shortModelName(status.model)} · ${formatMs(status.latency.lastMs)}`,
        warning: false,
        tooltip,
      };
  }
}

export function loadingView(message: string, percentage?: number): BarView {
  const pct = typeof percentage === 'number' ? ` ${Math.round(percentage)}%` : '';
  return {
    text: `$(loading~spin) Companion: loading model${pct}`,
    warning: false,
    tooltip: message ? `Companion: ${message}` : 'Companion: loading the model',
  };
}

/** The server's acceptance rate (whole and partial accepts), or accepted / shown from an older server. */
export function acceptanceRate(status: ServerStatus): string {
  if (status.acceptanceRate !== null) {
    return `${Math.round(100 * status.acceptanceRate)} %`;
  }
  return status.shown > 0 ? `${Math.round((100 * status.accepted) / status.shown)} %` : '—';
}

export function verdictText(verdict: Verdict): string {
  const limit = verdict.slowP95Ms !== null ? ` (slow: inline p95 over ${formatMs(verdict.slowP95Ms)})` : '';
  return verdict.reasons.length > 0 ? `**${verdict.level}** — ${verdict.reasons.join('; ')}` : `**${verdict.level}**${limit}`;
}

export function renderStatusMarkdown(status: ServerStatus): string {
  const lines = [
    '# Companion status',
    '',
    '| | Now |',
    '| --- | --- |',
    `| State | **${status.state}**${status.reason ? ` — ${status.reason}` : ''} |`,
    `| Backend | ${status.backend} |`,
    `| Model | \`${status.model || 'embedded default'}\` |`,
    `| Device | ${status.device || '—'} |`,
    `| Memory (server) | ${status.memoryMB ? `${Math.round(status.memoryMB)} MB` : '—'} |`,
    `| Memory (engine host) | ${status.host.memoryMB ? `${Math.round(status.host.memoryMB)} MB` : '—'}${status.host.safeMode ? ' (safe mode)' : ''} |`,
    ...(status.host.lastCrash ? [`| Last engine crash | ${status.host.lastCrash} |`] : []),
    `| Latency | last ${formatMs(status.latency.lastMs)} · p50 ${formatMs(status.latency.p50Ms)} · p95 ${formatMs(status.latency.p95Ms)} |`,
    `| Requests | inline ${status.requests.inline} · completion ${status.requests.completion} · hover ${status.requests.hover} · cancelled ${status.requests.cancelled} |`,
    `| Suggestions | shown ${status.shown} · accepted ${status.accepted} (${acceptanceRate(status)})` +
      `${status.partiallyAccepted ? ` · partly ${status.partiallyAccepted}` : ''} · rejected ${status.rejected} |`,
    `| Health | ${verdictText(status.verdict)} |`,
  ];
  if (status.steps.length > 0) {
    lines.push('', '## How the model was chosen', '', ...status.steps.map((step) => `1. ${step}`));
  }
  lines.push('', '_Counted on this machine only; nothing is sent anywhere._', '');
  return lines.join('\n');
}
