/**
 * Wakes waiters when the ledger reaches a sequence number: the engine behind ledger long-polls
 * and streams. The applier calls `notify(lastSeq)` after each apply.
 */

/** Most waiters held at once; beyond it `wait` returns at once and callers poll instead. */
export const SEQ_WAITERS_MAX = 10_000;

interface Waiter {
  seq: number;
  resolve: () => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Waiters for ledger positions, resolved by `notify` or by their timeout. */
export class SeqWatch {
  #lastSeq: number;
  readonly #waiters = new Set<Waiter>();

  constructor(lastSeq = 0) {
    this.#lastSeq = lastSeq;
  }

  /** Records that the ledger reached `lastSeq` and wakes every waiter at or below it. */
  notify(lastSeq: number): void {
    this.#lastSeq = lastSeq;
    for (const w of this.#waiters) {
      if (w.seq <= lastSeq) this.#settle(w);
    }
  }

  /** Resolves when the ledger reaches `seq` or after `timeoutMs`; never rejects. */
  wait(seq: number, timeoutMs: number): Promise<void> {
    if (seq <= this.#lastSeq || timeoutMs <= 0 || this.#waiters.size >= SEQ_WAITERS_MAX) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const waiter: Waiter = { seq, resolve, timer: undefined as unknown as Waiter["timer"] };
      waiter.timer = setTimeout(() => this.#settle(waiter), timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Wakes everyone (shutdown). */
  close(): void {
    for (const w of this.#waiters) this.#settle(w);
  }

  #settle(w: Waiter): void {
    clearTimeout(w.timer);
    this.#waiters.delete(w);
    w.resolve();
  }
}
