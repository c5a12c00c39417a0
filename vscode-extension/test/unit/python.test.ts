import './setup';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  Probed,
  candidates,
  decide,
  discover,
  expandHome,
  isSupported,
  parseProbe,
  probe,
  venvPython,
} from '../../src/common/python';

const ran = (command: string, version: [number, number, number], companion: string | null): Probed => ({
  candidate: { command, source: 'path' },
  result: { version, executable: `/usr/bin/${command}`, companion },
});
const failed = (command: string): Probed => ({ candidate: { command, source: 'path' }, error: 'ENOENT' });

test('a configured interpreter is the only candidate', () => {
  const list = candidates({ configured: '~/py/bin/python', privateVenv: '/store/venv' });
  assert.deepEqual(list, [{ command: expandHome('~/py/bin/python'), source: 'setting' }]);
  assert.ok(!list[0].command.startsWith('~'));
});

test('without a setting: private venv, Python extension, then PATH, without duplicates', () => {
  const list = candidates({
    configured: '',
    privateVenv: '/store/venv',
    pythonExtension: 'python3',
    platform: 'linux',
  });
  assert.deepEqual(
    list.map((c) => [c.command, c.source]),
    [
      ['/store/venv/bin/python', 'private'],
      ['python3', 'python-extension'],
      ['python', 'path'],
    ],
  );
});

test('venv python on Windows lives in Scripts', () => {
  assert.equal(venvPython('C:\\store\\venv', 'win32'), 'C:\\store\\venv\\Scripts\\python.exe');
  assert.equal(venvPython('/s/venv', 'darwin'), '/s/venv/bin/python');
});

test('parseProbe reads the last JSON line and rejects noise', () => {
  const out = 'warning: something\n{"version": [3, 12, 1], "executable": "/x/python", "companion": "0.1.0"}\n';
  assert.deepEqual(parseProbe(out), { version: [3, 12, 1], executable: '/x/python', companion: '0.1.0' });
  assert.equal(parseProbe('{"version": [3, 12, 1], "executable": "/x", "companion": null}')?.companion, null);
  assert.equal(parseProbe('Traceback (most recent call last)'), undefined);
  assert.equal(parseProbe('{"executable": "/x"}'), undefined);
});

test('Python 3.11 is the minimum', () => {
  assert.equal(isSupported([3, 11, 0]), true);
  assert.equal(isSupported([3, 13, 2]), true);
  assert.equal(isSupported([4, 0, 0]), true);
  assert.equal(isSupported([3, 10, 14]), false);
  assert.equal(isSupported([2, 7, 18]), false);
});

test('decide: the first interpreter with the server wins', () => {
  const decision = decide([ran('python3', [3, 12, 0], null), ran('python', [3, 11, 4], '0.1.0')]);
  assert.deepEqual(decision, {
    kind: 'ready',
    python: 'python',
    version: '3.11.4',
    companion: '0.1.0',
    source: 'path',
  });
});

test('decide: a new enough Python without the server asks for the install', () => {
  const decision = decide([ran('python3', [3, 9, 0], null), ran('python', [3, 12, 0], null)]);
  assert.equal(decision.kind, 'missing-server');
  assert.equal(decision.kind === 'missing-server' && decision.python, 'python');
});

test('decide: only old Pythons is "too old", none at all is "no python"', () => {
  assert.deepEqual(decide([failed('python3'), ran('python', [3, 8, 10], '0.1.0')]), {
    kind: 'too-old',
    python: 'python',
    version: '3.8.10',
  });
  const none = decide([failed('python3'), failed('python')]);
  assert.equal(none.kind, 'no-python');
  assert.deepEqual(none.kind === 'no-python' && none.tried, ['python3', 'python']);
});

test('probe runs a real interpreter and reports a missing one', async () => {
  const missing = await probe({ command: '/nonexistent/python', source: 'setting' });
  assert.equal(missing.result, undefined);
  assert.ok(missing.error);
  const real = await probe({ command: 'python3', source: 'path' });
  if (real.result) {
    assert.equal(real.result.version[0], 3);
  }
});

test('discover stops at the first usable interpreter', async () => {
  const { decision, probed } = await discover([{ command: '/nonexistent/python', source: 'setting' }]);
  assert.equal(decision.kind, 'no-python');
  assert.equal(probed.length, 1);
});
