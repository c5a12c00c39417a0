import './setup';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { FocusParams, FocusReporter, FocusedEditor } from '../../src/common/focus';

function editor(uri: string, languageId: string, line: number, character = 0): FocusedEditor {
  return { document: { uri: { toString: () => uri }, languageId }, selection: { active: { line, character } } };
}

test('the focused document and cursor go to the server once per document and line', () => {
  const sent: FocusParams[] = [];
  const focus = new FocusReporter((params) => sent.push(params), (id) => id !== 'markdown');
  assert.equal(focus.report(editor('file:///a.py', 'python', 40, 4)), true);
  assert.equal(focus.report(editor('file:///a.py', 'python', 40, 9)), false); // same line
  assert.equal(focus.report(editor('file:///b.ts', 'typescript', 3)), true);
  assert.equal(focus.report(editor('file:///a.py', 'python', 40)), true); // back to a.py
  assert.equal(focus.report(editor('file:///notes.md', 'markdown', 1)), false); // disabled
  assert.equal(focus.report(undefined), false); // no editor (e.g. the output panel)
  assert.deepEqual(sent, [
    { textDocument: { uri: 'file:///a.py' }, position: { line: 40, character: 4 } },
    { textDocument: { uri: 'file:///b.ts' }, position: { line: 3, character: 0 } },
    { textDocument: { uri: 'file:///a.py' }, position: { line: 40, character: 0 } },
  ]);
});

test('a restarted server hears about the focus again', () => {
  const sent: FocusParams[] = [];
  const focus = new FocusReporter((params) => sent.push(params), () => true);
  focus.report(editor('file:///a.py', 'python', 1));
  focus.report(editor('file:///a.py', 'python', 1));
  focus.reset();
  focus.report(editor('file:///a.py', 'python', 1));
  assert.equal(sent.length, 2);
});
