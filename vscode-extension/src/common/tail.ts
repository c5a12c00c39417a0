/** Keeps the last N lines of a stream (the server's stderr, pip's output) for error messages. */
export class TailBuffer {
  private readonly kept: string[] = [];
  private partial = '';

  constructor(private readonly size: number) {}

  /** Adds whole lines. */
  push(line: string): void {
    this.kept.push(line);
    if (this.kept.length > this.size) {
      this.kept.splice(0, this.kept.length - this.size);
    }
  }

  /** Adds a chunk of a stream; a line split across chunks is joined. */
  write(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line.trim()) {
        this.push(line);
      }
    }
  }

  lines(): string[] {
    return this.partial.trim() ? [...this.kept, this.partial].slice(-this.size) : [...this.kept];
  }

  clear(): void {
    this.kept.length = 0;
    this.partial = '';
  }
}

/** Splits a stream into lines, holding a partial line until its end arrives. */
export class LineSplitter {
  private partial = '';

  constructor(private readonly onLine: (line: string) => void) {}

  write(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    parts.filter((line) => line.trim()).forEach(this.onLine);
  }

  flush(): void {
    if (this.partial.trim()) {
      this.onLine(this.partial);
    }
    this.partial = '';
  }
}
