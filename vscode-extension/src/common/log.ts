/** One `LogOutputChannel` for the extension's own log and the LSP trace. */
import * as vscodeapi from './vscodeapi';

let channel: vscodeapi.LogOutputChannel | undefined;

export function logChannel(): vscodeapi.LogOutputChannel {
  channel ??= vscodeapi.createLogOutputChannel('Companion');
  return channel;
}

export function info(message: string): void {
  logChannel().info(message);
}

export function warn(message: string): void {
  logChannel().warn(message);
}

export function error(message: string): void {
  logChannel().error(message);
}

export function showLog(): void {
  logChannel().show(true);
}

/** A server stderr line (Python logging: `date time LEVEL name: message`) → log level and text. */
export function classifyServerLine(line: string): { level: 'info' | 'warn' | 'error'; text: string } {
  const text = line.replace(/^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?\s+/, '');
  if (/^(ERROR|CRITICAL)\b|^Traceback|^\w*(Error|Exception)\b/.test(text)) {
    return { level: 'error', text };
  }
  return { level: /^WARNING\b/.test(text) ? 'warn' : 'info', text };
}

/** Keeps a Python traceback at error level, from "Traceback" to its exception line. */
export class ServerLogLevels {
  private inTraceback = false;

  classify(line: string): { level: 'info' | 'warn' | 'error'; text: string } {
    const result = classifyServerLine(line);
    if (/^Traceback/.test(result.text)) {
      this.inTraceback = true;
    } else if (this.inTraceback) {
      // Frames are indented; the first line that is not ends the traceback.
      if (!/^\s/.test(line)) {
        this.inTraceback = false;
      }
      return { level: 'error', text: result.text };
    }
    return result;
  }
}
