import './setup';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  ACCEPT_COMMAND,
  AcceptArgs,
  PartialAcceptReporter,
  acceptArgs,
  acceptedLength,
  attachPartialAccept,
} from '../../src/common/partialAccept';
import { recorded } from './fakeVscode';

/** An inline item as the language client hands it to VS Code (the LSP command converted). */
function item(id = 'abc123'): { insertText: string; command: { title: string; command: string; arguments: unknown[] } } {
  return {
    insertText: 'return sum(item.price for item in items)',
    command: { title: 'Companion: suggestion accepted', command: ACCEPT_COMMAND, arguments: [{ id, source: 'model' }] },
  };
}

test('the accepted length comes as a number or as PartialAcceptInfo', () => {
  assert.equal(acceptedLength(5), 5);
  assert.equal(acceptedLength({ kind: 1, acceptedLength: 7 }), 7);
  for (const bad of [0, -3, 1.5, '4', undefined, null, {}, { acceptedLength: 'x' }]) {
    assert.equal(acceptedLength(bad), undefined, String(bad));
  }
  assert.deepEqual(acceptArgs(item()), { id: 'abc123', source: 'model' });
  assert.equal(acceptArgs({ command: { command: 'other.command', arguments: [{ id: 'x' }] } }), undefined);
  assert.equal(acceptArgs({ insertText: 'no command' }), undefined);
  assert.equal(acceptArgs({ command: { command: ACCEPT_COMMAND, arguments: [{}] } }), undefined);
});

test('each partial accept is sent once, and again only when more was kept', async () => {
  const sent: AcceptArgs[] = [];
  const reporter = new PartialAcceptReporter((args) => sent.push(args));
  const shown = item();
  assert.equal(reporter.handle(shown, 6), true);
  assert.equal(reporter.handle(shown, { kind: 1, acceptedLength: 6 }), false); // same accept, second form
  assert.equal(reporter.handle(shown, { kind: 2, acceptedLength: 18 }), true);
  assert.equal(reporter.handle(shown, 10), false);
  assert.equal(reporter.handle({ insertText: 'not ours' }, 4), false);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(sent, [
    { id: 'abc123', source: 'model', acceptedChars: 6 },
    { id: 'abc123', source: 'model', acceptedChars: 18 },
  ]);
});

test('a failing send never throws into VS Code', async () => {
  const reporter = new PartialAcceptReporter(() => Promise.reject(new Error('server gone')));
  assert.equal(reporter.handle(item(), 3), true);
  const throwing = new PartialAcceptReporter(() => {
    throw new Error('not running');
  });
  assert.equal(throwing.handle(item(), 3), true);
  await new Promise((resolve) => setImmediate(resolve));
});

test("the real language client's inline provider gets the hook", async () => {
  // vscode-languageclient's own feature class, loaded by file (its package exports hide it).
  const common = path.join(path.dirname(require.resolve('vscode-languageclient/node')), '..', 'common');
  const { InlineCompletionItemFeature } = require(path.join(common, 'inlineCompletion.js')) as {
    InlineCompletionItemFeature: new (client: unknown) => { register(data: unknown): void };
  };
  const fakeClient = { protocol2CodeConverter: { asDocumentSelector: (selector: unknown) => selector }, middleware: {} };
  const feature = new InlineCompletionItemFeature(fakeClient);
  const sent: AcceptArgs[] = [];
  assert.equal(attachPartialAccept(feature, new PartialAcceptReporter((args) => sent.push(args))), true);
  recorded.inlineProviders = [];
  feature.register({ id: 'inline-1', registerOptions: { documentSelector: [{ scheme: 'file' }] } });
  const [provider] = recorded.inlineProviders;
  assert.equal(typeof provider.provideInlineCompletionItems, 'function');
  const hook = provider.handleDidPartiallyAcceptCompletionItem as (item: unknown, info: unknown) => void;
  assert.equal(typeof hook, 'function');
  const shown = item('f00d');
  hook(shown, 4);
  hook(shown, { kind: 1, acceptedLength: 4 });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(sent, [{ id: 'f00d', source: 'model', acceptedChars: 4 }]);
});

test('an unfamiliar feature is left alone', () => {
  const reporter = new PartialAcceptReporter(() => undefined);
  assert.equal(attachPartialAccept(undefined, reporter), false);
  assert.equal(attachPartialAccept({}, reporter), false);
});
