import './setup';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { normalizeStatus, renderStatusMarkdown, statusBarView } from '../../src/common/status';

const crashed = {
  backend: 'llamacpp',
  model: 'smollm2-135m-instruct',
  state: 'restarting',
  reason: 'engine crashed: SIGILL in llamacpp — restarting (1/3)',
  memoryMB: 50,
  host: { pid: null, memoryMB: 0, safeMode: false, lastCrash: 'engine crashed: SIGILL in llamacpp' },
};

test('a restarting engine shows in the status bar as a warning with the crash as the reason', () => {
  const status = normalizeStatus(crashed);
  assert.equal(status.state, 'restarting');
  const view = statusBarView(status);
  assert.ok(view.warning);
  assert.match(view.text, /engine restarting/);
  assert.match(view.tooltip, /SIGILL in llamacpp — restarting \(1\/3\)/);
});

test('the report shows the server and the engine host memory apart, and the last crash', () => {
  const status = normalizeStatus({ ...crashed, state: 'ready', host: { memoryMB: 193.6, safeMode: true, lastCrash: 'engine crashed: SIGKILL in llamacpp' } });
  const report = renderStatusMarkdown(status);
  assert.match(report, /Memory \(server\) \| 50 MB/);
  assert.match(report, /Memory \(engine host\) \| 194 MB \(safe mode\)/);
  assert.match(report, /Last engine crash \| engine crashed: SIGKILL in llamacpp/);
});

test('a server without a host field still renders', () => {
  const status = normalizeStatus({ backend: 'templates', state: 'templates' });
  assert.equal(status.host.memoryMB, 0);
  assert.doesNotMatch(renderStatusMarkdown(status), /Last engine crash/);
});
