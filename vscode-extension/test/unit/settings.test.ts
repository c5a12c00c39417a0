import './setup';
import { beforeEach, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as settings from '../../src/common/settings';
import { recorded, settingsStore } from './fakeVscode';

beforeEach(() => settingsStore.reset());

const reader = (values: Record<string, unknown>) => ({ get: <T>(key: string) => values[key] as T | undefined });

test('client settings have defaults and are clamped', () => {
  assert.deepEqual(settings.readClientSettings(reader({})), {
    python: '',
    installSource: '',
    triggerMode: 'automatic',
    debounceMs: 0,
  });
  const read = settings.readClientSettings(
    reader({ 'server.python': ' /opt/py ', 'inline.triggerMode': 'onDemand', 'inline.debounceMs': 99999 }),
  );
  assert.equal(read.python, '/opt/py');
  assert.equal(read.triggerMode, 'onDemand');
  assert.equal(read.debounceMs, 5000);
  assert.equal(settings.readClientSettings(reader({ 'inline.triggerMode': 'sometimes' })).triggerMode, 'automatic');
});

test('only the interpreter and install source restart the server process', () => {
  const changed = (key: string) => (section: string) => section === key;
  assert.equal(settings.affectsRestart(changed('companion.server.python')), true);
  assert.equal(settings.affectsRestart(changed('companion.server.installSource')), true);
  // the server reloads its engine for these by itself
  assert.equal(settings.affectsRestart(changed('companion.model')), false);
  assert.equal(settings.affectsRestart(changed('companion.backend')), false);
  assert.equal(settings.affectsRestart(changed('companion.maxTokens')), false);
  assert.equal(settings.affectsRestart(changed('companion.inline.debounceMs')), false);
  assert.equal(settings.affectsRestart(changed('editor.fontSize')), false);
});

test('the server gets the whole section as plain JSON', () => {
  settingsStore.values = { backend: 'llamacpp', maxTokens: 32, inline: { debounceMs: 100 } };
  assert.deepEqual(settings.currentServerSettings(), { backend: 'llamacpp', maxTokens: 32, inline: { debounceMs: 100 } });
});

test('enable honours language overrides', () => {
  settingsStore.values = { enable: true, 'inline.enable': true };
  settingsStore.languages = { markdown: { enable: false }, python: { 'inline.enable': false } };
  assert.equal(settings.isEnabledFor('typescript'), true);
  assert.equal(settings.isEnabledFor('markdown'), false);
  assert.equal(settings.isEnabledFor('python'), true);
  assert.equal(settings.isEnabledFor('python', 'inline'), false);
  settingsStore.values = { enable: false };
  assert.equal(settings.isEnabledFor('typescript', 'inline'), false);
});

test('toggleInline flips the global setting', async () => {
  assert.equal(await settings.toggleInline(), false);
  assert.deepEqual(recorded.updates, [{ key: 'inline.enable', value: false }]);
  assert.equal(await settings.toggleInline(), true);
});
