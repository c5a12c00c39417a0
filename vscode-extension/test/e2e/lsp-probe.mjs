// Asks the real server what it offers, before the browser test relies on it: starts
// `<python> -m companion serve`, sends initialize (templates backend, so no model loads),
// opens an empty Python file, asks for code actions there, then shuts the server down.
import { spawn } from 'node:child_process';

function encode(message) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', ...message }), 'utf8');
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]);
}

/** Reads framed JSON-RPC messages from a stream. */
function reader(stream, onMessage) {
  let buffer = Buffer.alloc(0);
  stream.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const headerEnd = buffer.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const match = /Content-Length: (\d+)/i.exec(buffer.subarray(0, headerEnd).toString('ascii'));
      if (!match) throw new Error('bad LSP header');
      const length = Number(match[1]);
      if (buffer.length < headerEnd + 4 + length) return;
      const body = buffer.subarray(headerEnd + 4, headerEnd + 4 + length).toString('utf8');
      buffer = buffer.subarray(headerEnd + 4 + length);
      onMessage(JSON.parse(body));
    }
  });
}

export async function probeServer(python, { timeoutMs = 60000, workspace = '/tmp', env = process.env } = {}) {
  const child = spawn(python, ['-m', 'companion', 'serve'], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk.toString()));
  const pending = new Map();
  let nextId = 1;
  reader(child.stdout, (message) => {
    if (message.id !== undefined && message.method) {
      // A request from the server (configuration, progress/create): answer it.
      const result = message.method === 'workspace/configuration'
        ? (message.params?.items ?? []).map(() => ({ backend: 'templates' }))
        : null;
      child.stdin.write(encode({ id: message.id, result }));
    } else if (message.id !== undefined && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    }
  });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const request = (method, params) =>
    Promise.race([
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        child.stdin.write(encode({ id, method, params }));
      }),
      exited.then((code) => {
        throw new Error(`server exited (${code}) during ${method}: ${stderr.split('\n').slice(-8).join('\n')}`);
      }),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`${method} timed out`)), timeoutMs)),
    ]);
  const notify = (method, params) => child.stdin.write(encode({ method, params }));
  try {
    const init = await request('initialize', {
      processId: process.pid,
      rootUri: `file://${workspace}`,
      capabilities: { window: { workDoneProgress: true }, workspace: { configuration: true } },
      initializationOptions: { backend: 'templates' },
    });
    if (init.error) throw new Error(`initialize: ${JSON.stringify(init.error)}`);
    notify('initialized', {});
    const capabilities = init.result.capabilities ?? {};
    let scaffoldTitles = [];
    if (capabilities.codeActionProvider) {
      const uri = `file://${workspace}/probe_empty.py`;
      notify('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text: '' } });
      const answer = await request('textDocument/codeAction', {
        textDocument: { uri },
        range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
        context: { diagnostics: [], only: ['refactor.rewrite', 'source'], triggerKind: 1 },
      });
      scaffoldTitles = (answer.result ?? []).map((action) => action.title).filter((t) => t.startsWith('Scaffold'));
    }
    await request('shutdown', null).catch(() => undefined);
    notify('exit', null);
    return { capabilities, serverInfo: init.result.serverInfo, scaffoldTitles };
  } finally {
    setTimeout(() => child.kill(), 2000).unref();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await probeServer(process.argv[2] ?? 'python3');
  console.log(JSON.stringify(result, null, 2));
  process.exit(0);
}
