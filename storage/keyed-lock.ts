// Mutual exclusion per key within this process: callers for one key run one after another in
// arrival order; different keys do not wait for each other. Not reentrant: a holder that asks for
// its own key again waits forever, so callers taking several keys take them in one sorted order.
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Whether some caller holds or waits for `key`. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chain = prev.then(() => mine);
    this.tails.set(key, chain);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === chain) this.tails.delete(key);
    }
  }
}
