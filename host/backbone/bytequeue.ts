// Bytes received on a stream, kept as the chunks they came in, so a 10 MB record that arrives in 64 KB
// pieces is assembled with one copy at the end instead of a Buffer.concat on every piece.

export class ByteQueue {
  private parts: Buffer[] = [];
  private head = 0; // parts before this index are used up
  private offset = 0; // bytes of parts[head] already taken
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.parts.push(b);
    this.length += b.length;
  }

  /** The first n bytes (n <= length) without taking them; a view when they sit in one chunk. */
  peek(n: number): Buffer {
    const first = this.parts[this.head];
    if (first.length - this.offset >= n) return first.subarray(this.offset, this.offset + n);
    return this.copyOut(n, false);
  }

  /** Takes the first n bytes (n <= length); a view when they sit in one chunk, else one copy. */
  take(n: number): Buffer {
    const first = this.parts[this.head];
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.advance(n);
      return out;
    }
    return this.copyOut(n, true);
  }

  clear(): void {
    this.parts = [];
    this.head = 0;
    this.offset = 0;
    this.length = 0;
  }

  private copyOut(n: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    let i = this.head;
    let off = this.offset;
    while (got < n) {
      const p = this.parts[i];
      const k = Math.min(p.length - off, n - got);
      p.copy(out, got, off, off + k);
      got += k;
      off = 0;
      i++;
    }
    if (consume) this.advance(n);
    return out;
  }

  private advance(n: number): void {
    this.length -= n;
    while (n > 0) {
      const left = this.parts[this.head].length - this.offset;
      if (n < left) {
        this.offset += n;
        return;
      }
      n -= left;
      this.head++;
      this.offset = 0;
    }
    // Drop used-up chunks now and then, not on every take.
    if (this.head > 64 || this.head === this.parts.length) {
      this.parts = this.parts.slice(this.head);
      this.head = 0;
    }
  }
}
