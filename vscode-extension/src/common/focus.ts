/**
 * `companion/didFocus`: where the user is looking (the active editor's document and cursor),
 * so the server warms the model's prompt there before the first suggestion is asked for, and
 * lets other files' warm-ups give way. Nothing but the URI and the cursor's position is sent.
 */

export const FOCUS_NOTIFICATION = 'companion/didFocus';

export interface FocusParams {
  textDocument: { uri: string };
  position: { line: number; character: number };
}

/** The parts of a `TextEditor` this needs (so tests need no vscode). */
export interface FocusedEditor {
  document: { uri: { toString(): string }; languageId: string };
  selection: { active: { line: number; character: number } };
}

/**
 * Sends one notification per change of focused document (or of the cursor's line when the
 * same document is focused again), only for languages Companion is enabled for.
 */
export class FocusReporter {
  private last = '';

  constructor(
    private readonly send: (params: FocusParams) => void,
    private readonly enabledFor: (languageId: string) => boolean,
  ) {}

  report(editor: FocusedEditor | undefined): boolean {
    if (!editor || !this.enabledFor(editor.document.languageId)) {
      return false;
    }
    const uri = editor.document.uri.toString();
    const { line, character } = editor.selection.active;
    const key = `${uri}#${line}`;
    if (key === this.last) {
      return false;
    }
    this.last = key;
    this.send({ textDocument: { uri }, position: { line, character } });
    return true;
  }

  /** A new server knows nothing yet: the next report is sent even if unchanged. */
  reset(): void {
    this.last = '';
  }
}
