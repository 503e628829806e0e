// A bounded FIFO for outgoing MQTT messages while the broker is away. Full means the OLDEST entry goes: for
// telemetry-like device data the newest readings matter most, and memory must not grow with the outage.

export class DropOldestQueue<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private size = 0;
  /** Entries dropped because the queue was full, since construction. */
  dropped = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, not ${String(capacity)}`);
    this.items = new Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Adds `item`; returns the entry dropped to make room, if any. */
  push(item: T): T | undefined {
    let evicted: T | undefined;
    if (this.size === this.capacity) {
      evicted = this.shift();
      this.dropped++;
    }
    this.items[(this.head + this.size) % this.capacity] = item;
    this.size++;
    return evicted;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return item;
  }

  /** Removes everything; returns how many entries there were. */
  clear(): number {
    const n = this.size;
    while (this.size > 0) this.shift();
    return n;
  }
}
