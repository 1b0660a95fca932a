// A fixed-capacity FIFO for high-frequency data (chunk events, loss points): pushing never allocates
// once full and never grows, so a long run cannot eat the tab's memory. Consumers that draw
// imperatively remember `pushed` and ask for what arrived `since` then.

export class RingBuffer<T> {
  private readonly items: (T | undefined)[];
  /** Index of the oldest item. */
  private head = 0;
  private count = 0;
  private pushedTotal = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`ring buffer capacity must be a positive integer, got ${capacity}`);
    }
    this.items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Items ever pushed (a sequence number: the next push gets this one). */
  get pushed(): number {
    return this.pushedTotal;
  }

  push(item: T): void {
    const tail = (this.head + this.count) % this.capacity;
    this.items[tail] = item;
    if (this.count < this.capacity) this.count++;
    else this.head = (this.head + 1) % this.capacity;
    this.pushedTotal++;
  }

  /** i = 0 is the oldest item kept. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    return this.items[(this.head + i) % this.capacity];
  }

  last(): T | undefined {
    return this.at(this.count - 1);
  }

  toArray(): T[] {
    return this.since(0);
  }

  /** Items with sequence number >= seq, oldest first (only those still kept if some were overwritten). */
  since(seq: number): T[] {
    const firstKept = this.pushedTotal - this.count;
    const from = Math.max(seq, firstKept) - firstKept;
    const out: T[] = [];
    for (let i = from; i < this.count; i++) out.push(this.items[(this.head + i) % this.capacity] as T);
    return out;
  }

  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.count = 0;
  }
}
