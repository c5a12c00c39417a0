/** Import first in every test file: `require('vscode')` then loads ./fakeVscode. */
import Module = require('node:module');
import * as path from 'node:path';

type Resolve = (request: string, ...rest: unknown[]) => string;
const internal = Module as unknown as { _resolveFilename: Resolve };
const original = internal._resolveFilename;
const fake = path.join(__dirname, 'fakeVscode.js');

internal._resolveFilename = function resolveVscode(this: unknown, request: string, ...rest: unknown[]) {
  return request === 'vscode' ? fake : original.call(this, request, ...rest);
};
