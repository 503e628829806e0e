// Virtual time for the simulator: a queue of events ordered by time (ties in scheduling order), run as fast
// as the host allows. Nothing in a run reads the wall clock, so a run is a function of its seed.

type Event = { at: number; seq: number; fn: () => void };

export class VirtualClock {
  now = 0;
  private seq = 0;
  private heap: Event[] = [];

  /** Runs `fn` at time `at` (ms), or now if that is past. */
  at(at: number, fn: () => void): void {
    this.push({ at: Math.max(at, this.now), seq: this.seq++, fn });
  }

  after(ms: number, fn: () => void): void {
    this.at(this.now + ms, fn);
  }

  /** Runs `fn` every `ms` from now + ms until `stop()` returns true. */
  every(ms: number, fn: () => void, stop: () => boolean = () => false): void {
    const tick = () => {
      if (stop()) return;
      fn();
      this.after(ms, tick);
    };
    this.after(ms, tick);
  }

  /** Runs events until the queue is empty or time would pass `until`. */
  runUntil(until: number): void {
    while (this.heap.length > 0 && this.heap[0].at <= until) {
      const e = this.pop();
      this.now = e.at;
      e.fn();
    }
    this.now = until;
  }

  private less(a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): Event {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
