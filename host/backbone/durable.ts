// What a receiver may acknowledge when its messages become durable out of order. A backbone acknowledgement
// is cumulative ("every message numbered below n is taken"), but the controller makes messages durable
// at different speeds: an UPLINK once the MQTT broker has it (PUBACK), a key evolution once the database
// has it, anything else at once. So the acknowledgement may only move past a number once every message up
// to it is done; a slow one holds back those after it, never the other way round.
//
// Numbers belong to one run of the sender (peer.ts); a new run starts a new DurableAcks.

export class DurableAcks {
  /** Numbers begun and not yet passed by the acknowledgement, in order; `head` is the oldest. */
  private begun: number[] = [];
  private head = 0;
  private readonly done = new Set<number>();
  /** One past the highest number begun: what may be acknowledged once nothing is outstanding. */
  private high = 0;

  constructor(readonly run: string) {}

  /** Messages begun and not yet acknowledgeable. */
  get outstanding(): number { return this.begun.length - this.head; }

  /** A message numbered `seq` arrived (numbers only go up within a run). */
  begin(seq: number): void {
    this.begun.push(seq);
    this.high = seq + 1;
  }

  /**
   * The message numbered `seq` is durable. Returns the new cumulative acknowledgement when it moved, else
   * undefined (an older message is still outstanding, or `seq` was never begun).
   */
  finish(seq: number): number | undefined {
    if (this.head === this.begun.length || seq < this.begun[this.head] || seq >= this.high) return undefined;
    this.done.add(seq);
    const before = this.head;
    while (this.head < this.begun.length && this.done.delete(this.begun[this.head])) this.head++;
    if (this.head === before) return undefined;
    if (this.head > 1024 && this.head * 2 > this.begun.length) {
      this.begun = this.begun.slice(this.head);
      this.head = 0;
    }
    return this.head < this.begun.length ? this.begun[this.head] : this.high;
  }
}
