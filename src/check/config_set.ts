/**
 * The set of configurations the search has visited: (set of linearized operations as a bitset,
 * interned state id), in an open-addressing hash table over one flat typed array so that a
 * lookup allocates nothing.
 *
 * @module
 */

const CAPACITY_SLOTS_MIN = 1024;

/**
 * A set of (bitset, state id) pairs; the caller supplies each pair's hash. Its table never
 * grows past `bytesMax`: once it would have to, `full` turns true and the caller must stop.
 */
export class ConfigSet {
  /** Slot layout: [hash, stateId + 1 (0 = empty), ...bitset words]. */
  #table: Uint32Array;
  #capacitySlots: number;
  #size = 0;
  #full = false;
  readonly #words: number;
  readonly #slotWords: number;
  readonly #bytesMax: number;

  /** `words` is the length of every bitset added. */
  constructor(words: number, bytesMax = Infinity) {
    if (!(words >= 1)) throw new RangeError(`words must be >= 1, got ${words}`);
    this.#words = words;
    this.#slotWords = words + 2;
    this.#bytesMax = bytesMax;
    this.#capacitySlots = CAPACITY_SLOTS_MIN;
    this.#table = new Uint32Array(this.#capacitySlots * this.#slotWords);
  }

  /** How many configurations the set holds. */
  get size(): number {
    return this.#size;
  }

  /** The size of the table, in bytes. */
  get sizeBytes(): number {
    return this.#table.byteLength;
  }

  /** Whether the table reached `bytesMax`; it then still answers, but must not be added to. */
  get full(): boolean {
    return this.#full;
  }

  /**
   * Adds the configuration; returns false when it was already present. `hash` must be a
   * function of (`bits`, `stateId`) only.
   */
  add(bits: Uint32Array, stateId: number, hash: number): boolean {
    if (this.#full) throw new Error("invariant: a full ConfigSet was added to");
    if (bits.length !== this.#words) {
      throw new RangeError(`bitset has ${bits.length} words, the set holds ${this.#words}`);
    }
    const table = this.#table;
    const slotWords = this.#slotWords;
    const words = this.#words;
    const mask = this.#capacitySlots - 1;
    const tag = stateId + 1;
    hash >>>= 0;
    for (let slot = hash & mask;; slot = (slot + 1) & mask) {
      const base = slot * slotWords;
      const slotTag = table[base + 1];
      if (slotTag === 0) {
        table[base] = hash;
        table[base + 1] = tag;
        table.set(bits, base + 2);
        this.#size++;
        if (this.#size * 2 > this.#capacitySlots) {
          // Past the byte limit the table stays half full (so probes still end): the caller
          // sees `full` and stops adding.
          if (this.#table.byteLength * 2 > this.#bytesMax) this.#full = true;
          else this.#grow();
        }
        return true;
      }
      if (slotTag === tag && table[base] === hash) {
        let same = true;
        for (let w = 0; w < words; w++) {
          if (table[base + 2 + w] !== bits[w]) {
            same = false;
            break;
          }
        }
        if (same) return false;
      }
    }
  }

  #grow(): void {
    const old = this.#table;
    const slotWords = this.#slotWords;
    const oldSlots = this.#capacitySlots;
    this.#capacitySlots = oldSlots * 2;
    this.#table = new Uint32Array(this.#capacitySlots * slotWords);
    const mask = this.#capacitySlots - 1;
    for (let oldSlot = 0; oldSlot < oldSlots; oldSlot++) {
      const from = oldSlot * slotWords;
      if (old[from + 1] === 0) continue;
      let slot = old[from] & mask;
      while (this.#table[slot * slotWords + 1] !== 0) slot = (slot + 1) & mask;
      this.#table.set(old.subarray(from, from + slotWords), slot * slotWords);
    }
  }
}
