import './setup';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Notifier, stderrSuffix } from '../../src/common/notify';
import { LineSplitter, TailBuffer } from '../../src/common/tail';
import { ServerLogLevels, classifyServerLine } from '../../src/common/log';
import { debounce, delay } from '../../src/common/debounce';
import { StatusBar } from '../../src/common/statusBar';
import { normalizeStatus } from '../../src/common/status';
import { COMMANDS, isScaffold, menuItems, scaffoldLabel } from '../../src/common/commands';
import { FakeStatusBarItem, ThemeColor, recorded } from './fakeVscode';
import * as vscodeapi from '../../src/common/vscodeapi';

test('an error is shown once per key, and its action runs', async () => {
  const shown: string[] = [];
  let ran = 0;
  const notifier = new Notifier(async (_severity, message) => {
    shown.push(message);
    return 'Fix';
  });
  assert.equal(await notifier.once('no-python', 'error', 'no python', [{ title: 'Fix', run: () => ran++ }]), true);
  assert.equal(await notifier.once('no-python', 'error', 'no python again'), false);
  assert.deepEqual(shown, ['no python']);
  assert.equal(ran, 1);
  notifier.reset('no-python');
  assert.equal(await notifier.once('no-python', 'error', 'back'), true);
});

test('the default notifier goes through the wrapper', async () => {
  const notifier = new Notifier();
  await notifier.once('k', 'warning', 'careful', [{ title: 'OK', run: () => {} }]);
  assert.deepEqual(recorded.messages.at(-1), { severity: 'warning', message: 'careful', items: ['OK'] });
});

test('stderr tail: last lines, joined across chunks', () => {
  const tail = new TailBuffer(3);
  tail.write('one\ntw');
  tail.write('o\nthree\n\nfour\nfi');
  assert.deepEqual(tail.lines(), ['three', 'four', 'fi']);
  assert.equal(stderrSuffix(['a', ' ', 'ModuleNotFoundError: x']), ' Last output: a ⏎ ModuleNotFoundError: x');
  assert.equal(stderrSuffix([]), '');
});

test('debounce runs once after the last call', async () => {
  let calls = 0;
  const run = debounce(() => calls++, 20);
  run();
  run();
  run();
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(calls, 1);
  run();
  run.cancel();
  await new Promise((resolve) => setTimeout(resolve, 40));
  assert.equal(calls, 1);
  let cancelled = false;
  const waiting = delay(1000, () => cancelled);
  cancelled = true;
  assert.equal(await waiting, false);
  assert.equal(await delay(10), true);
});

test('status bar: spinner while loading, warning colour on templates, click opens the menu', () => {
  const item = new FakeStatusBarItem();
  const bar = new StatusBar(item as unknown as vscodeapi.StatusBarItem);
  assert.equal(item.visible, true);
  assert.equal(item.command, 'companion.menu');
  bar.loadingModel('reading', 10);
  const ready = normalizeStatus({ backend: 'llamacpp', model: 'm.gguf', state: 'ready', latency: { lastMs: 50 } });
  bar.update({ ...ready, state: 'loading' });
  assert.match(item.text, /loading model 10%/);
  bar.loaded();
  bar.update(ready);
  assert.equal(item.text, '$(sparkle) llamacpp · m · 50 ms');
  assert.equal(item.backgroundColor, undefined);
  bar.update({ ...ready, state: 'templates' });
  assert.ok((item.backgroundColor as unknown) instanceof ThemeColor);
  assert.match(String((item.accessibilityInformation as { label: string }).label), /^Companion status: Companion: templates/);
  bar.problem('Companion: no Python', 'x');
  assert.equal(bar.isLoading, false);
  assert.match(bar.text(), /no Python/);
});

test('the status menu and the scaffold filter', () => {
  assert.deepEqual(
    menuItems(true).map((item) => item.command),
    [COMMANDS.showStatus, COMMANDS.restartServer, COMMANDS.toggleInline, COMMANDS.showLog],
  );
  assert.match(menuItems(false)[2].label, /Enable/);
  assert.equal(isScaffold({ title: 'Scaffold FastAPI app' }), true);
  assert.equal(isScaffold({ title: 'Extract method' }), false);
  assert.equal(scaffoldLabel('Scaffold: Scaffold a FastAPI app'), 'Scaffold a FastAPI app');
  assert.equal(scaffoldLabel('Scaffold pytest tests'), 'Scaffold pytest tests');
});

test('server stderr lines keep their level, without the timestamp', () => {
  assert.deepEqual(classifyServerLine('2026-11-23 17:10:43,296 INFO companion.engine: model ready'), {
    level: 'info',
    text: 'INFO companion.engine: model ready',
  });
  assert.equal(classifyServerLine('2026-11-23 17:10:43,296 WARNING companion: slow').level, 'warn');
  assert.equal(classifyServerLine('ERROR companion: failed').level, 'error');
  assert.equal(classifyServerLine('Traceback (most recent call last):').level, 'error');
  assert.equal(classifyServerLine("ModuleNotFoundError: No module named 'llama_cpp'").level, 'error');
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line));
  splitter.write('a\r\nb');
  splitter.write('c\n\n');
  splitter.write('tail');
  splitter.flush();
  assert.deepEqual(lines, ['a', 'bc', 'tail']);
});

test('a traceback stays at error level through its exception line', () => {
  const levels = new ServerLogLevels();
  const seen = [
    'ERROR companion.lsp.inline: completion failed',
    'Traceback (most recent call last):',
    '  File "x.py", line 1, in f',
    '    raise Superseded()',
    'companion.engine.scheduler.Superseded',
    'INFO companion: next',
  ].map((line) => levels.classify(line).level);
  assert.deepEqual(seen, ['error', 'error', 'error', 'error', 'error', 'info']);
});
