// A table visited a slice at a time, in turn, across calls: a poll that looks at a few entries of a large
// Map each time instead of all of them, so its cost does not grow with the table. A Map's iterator sees the
// entries added and deleted since it was made, so the sweep goes on where it stopped and starts over at
// the end.

export class MapSweep<K, V> {
  private it: IterableIterator<[K, V]>;

  constructor(private readonly map: Map<K, V>) {
    this.it = map.entries();
  }

  /** Visits the next `n` entries (no more than the map holds); `each` may delete the entry it is given. */
  next(n: number, each: (key: K, value: V) => void): void {
    for (let k = Math.min(n, this.map.size); k > 0; k--) {
      let e = this.it.next();
      if (e.done === true) {
        this.it = this.map.entries();
        e = this.it.next();
        if (e.done === true) return;
      }
      each(e.value[0], e.value[1]);
    }
  }
}

/**
 * How many entries of a table of `size` a poll visits: every entry within POLL_SPREAD polls (about once a
 * second at the gateway's 50 ms tick), POLL_MIN at least, so a poll costs the same for any table size.
 */
export function pollSlice(size: number): number {
  return Math.max(POLL_MIN, Math.ceil(size / POLL_SPREAD));
}

const POLL_SPREAD = 20;
const POLL_MIN = 64;
