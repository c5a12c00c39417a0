import './setup';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  acceptanceRate,
  formatMs,
  loadingView,
  normalizeStatus,
  renderStatusMarkdown,
  shortModelName,
  statusBarView,
} from '../../src/common/status';

const full = {
  backend: 'llamacpp',
  model: 'HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct.q8_0.gguf',
  device: 'cpu',
  state: 'ready',
  reason: '',
  memoryMB: 180.4,
  requests: { inline: 12, completion: 3, hover: 2, cancelled: 4 },
  latency: { p50Ms: 240, p95Ms: 1250, lastMs: 212.6 },
  shown: 10,
  accepted: 4,
  steps: ['configured: embedded default', 'llamacpp: loaded'],
};

test('normalizeStatus fills what a partial answer leaves out', () => {
  const status = normalizeStatus({ backend: 'templates', state: 'templates', latency: { lastMs: 'x' } });
  assert.equal(status.backend, 'templates');
  assert.equal(status.latency.lastMs, null);
  assert.deepEqual(status.requests, { inline: 0, completion: 0, hover: 0, cancelled: 0 });
  assert.deepEqual(status.steps, []);
  assert.equal(normalizeStatus(null).state, 'ready');
  assert.equal(normalizeStatus({ state: 'bogus' }).state, 'ready');
});

test('status bar: backend · model · last latency when ready', () => {
  const view = statusBarView(normalizeStatus(full));
  assert.equal(view.text, '$(sparkle) llamacpp · smollm2-135m-instruct.q8_0 · 213 ms');
  assert.equal(view.warning, false);
});

test('status bar: warning when degraded or on templates', () => {
  const templates = statusBarView(normalizeStatus({ ...full, state: 'templates', reason: 'no llama_cpp' }));
  assert.equal(templates.warning, true);
  assert.match(templates.text, /templates/);
  assert.match(templates.tooltip, /no llama_cpp/);
  const degraded = statusBarView(normalizeStatus({ ...full, state: 'degraded' }));
  assert.equal(degraded.warning, true);
  assert.match(degraded.text, /^\$\(warning\) llamacpp/);
});

test('status bar: a spinner while loading', () => {
  assert.match(statusBarView(normalizeStatus({ ...full, state: 'loading' })).text, /loading~spin/);
  assert.equal(loadingView('reading weights', 42.4).text, '$(loading~spin) Companion: loading model 42%');
  assert.equal(loadingView('').tooltip, 'Companion: loading the model');
});

test('model names and durations are short', () => {
  assert.equal(shortModelName(''), 'default');
  assert.equal(shortModelName('C:\\models\\qwen.gguf'), 'qwen');
  assert.equal(shortModelName('a'.repeat(40)).length, 28);
  assert.equal(formatMs(null), '—');
  assert.equal(formatMs(87.2), '87 ms');
  assert.equal(formatMs(1530), '1.5 s');
});

test('the Markdown report has every number and the steps', () => {
  const markdown = renderStatusMarkdown(normalizeStatus(full));
  for (const part of ['**ready**', 'llamacpp', 'cpu', '180 MB', 'p95 1.3 s', 'inline 12', 'cancelled 4', 'accepted 4 (40 %)']) {
    assert.ok(markdown.includes(part), `missing ${part}`);
  }
  assert.match(markdown, /1\. configured: embedded default\n1\. llamacpp: loaded/);
  assert.doesNotMatch(renderStatusMarkdown(normalizeStatus({})), /How the model was chosen/);
});

test('acceptance rate and health verdict from a newer server', () => {
  const status = normalizeStatus({
    ...full,
    partiallyAccepted: 1,
    rejected: 3,
    acceptanceRate: 0.5,
    verdict: { level: 'slow', reasons: ['inline p95 3100 ms is over the 2500 ms deadline'], thresholds: { slowP95Ms: 2500 } },
  });
  assert.equal(acceptanceRate(status), '50 %');
  assert.deepEqual(status.verdict, {
    level: 'slow',
    reasons: ['inline p95 3100 ms is over the 2500 ms deadline'],
    slowP95Ms: 2500,
  });
  const markdown = renderStatusMarkdown(status);
  for (const part of ['accepted 4 (50 %) · partly 1 · rejected 3', '| Health | **slow** — inline p95 3100 ms']) {
    assert.ok(markdown.includes(part), `missing ${part}`);
  }
  const older = normalizeStatus(full);
  assert.equal(acceptanceRate(older), '40 %');
  assert.deepEqual(older.verdict, { level: 'ok', reasons: [], slowP95Ms: null });
  assert.equal(normalizeStatus({ verdict: { level: 'bogus' } }).verdict.level, 'ok');
  assert.match(renderStatusMarkdown(normalizeStatus({ verdict: { level: 'ok', reasons: [], thresholds: { slowP95Ms: 2500 } } })), /\*\*ok\*\* \(slow: inline p95 over 2\.5 s\)/);
});

test('the status bar tooltip says why the server is slow or degraded', () => {
  const slow = normalizeStatus({ ...full, verdict: { level: 'slow', reasons: ['inline p95 3100 ms is over the 2500 ms deadline'] } });
  assert.match(statusBarView(slow).tooltip, /; slow: inline p95 3100 ms is over the 2500 ms deadline \(click/);
  assert.doesNotMatch(statusBarView(normalizeStatus(full)).tooltip, /; ok/);
});
