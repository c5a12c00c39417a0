/** A trailing-edge debounce: many calls within `waitMs` run `fn` once, after the last. */
export function debounce(fn: () => void, waitMs: number): { (): void; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const debounced = () => {
    if (timer) {
      clearTimeout(timer);
    }
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, waitMs);
  };
  debounced.cancel = () => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
  };
  return debounced;
}

/** Resolves after `ms`, or early (with false) when `isCancelled` turns true. */
export function delay(ms: number, isCancelled: () => boolean = () => false): Promise<boolean> {
  return new Promise((resolve) => {
    const started = Date.now();
    const tick = () => {
      if (isCancelled()) {
        resolve(false);
      } else if (Date.now() - started >= ms) {
        resolve(true);
      } else {
        setTimeout(tick, Math.min(25, ms));
      }
    };
    setTimeout(tick, Math.min(25, ms));
  });
}
