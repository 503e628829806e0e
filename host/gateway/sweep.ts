// A table visited a slice at a time, in turn, across calls: a poll that looks at a few entries of a large
// Map each time instead of all of them, so its cost does not grow with the table. Each call takes the
// first entries in the Map's order and moves each one it visited (and did not delete) to the end, so the
// next call goes on with the entries not yet visited.
//
// No iterator is kept between calls: V8 keeps every table a Map has outgrown alive, with the entries it
// held, for as long as an iterator made on it has not moved on, so a kept iterator over a table that
// churns between polls (a flood of one-shot sources, each added and evicted) held every evicted entry:
// 100,000 one-shot sources grew the heap by 210 MB.

export class MapSweep<K, V> {
  constructor(private readonly map: Map<K, V>) {}

  /** Visits the next `n` entries (no more than the map holds); `each` may delete the entry it is given. */
  next(n: number, each: (key: K, value: V) => void): void {
    const map = this.map;
    const visit = Math.min(n, map.size);
    if (visit === 0) return;
    const keys: K[] = new Array(visit);
    let k = 0;
    for (const key of map.keys()) {
      keys[k++] = key;
      if (k === visit) break;
    }
    for (let i = 0; i < visit; i++) {
      const key = keys[i];
      const v = map.get(key);
      if (v === undefined) continue; // deleted by an earlier visit
      each(key, v);
      if (map.get(key) !== v) continue; // deleted (or replaced) by this one
      map.delete(key);
      map.set(key, v);
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
