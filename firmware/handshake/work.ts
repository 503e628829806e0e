// The X25519 work of a handshake step, done all at once (a host, a board with native X25519) or in slices
// of a few ladder steps per tick (a board running the portable ladder), so the board keeps serving its
// radio while it computes.
import { Bytes } from "#target";
import { CryptoProvider } from "../crypto/provider";
import { x25519Result, x25519Start, x25519Step, X25519Job } from "../crypto/x25519";
import { DhNeed } from "./dh";

export type DhWork = { jobs: X25519Job[]; at: number; results: Bytes[]; done: boolean };

/** Starts the work. With sliceSteps = 0 it is done at once with the provider's X25519. */
export function workStart(p: CryptoProvider, needs: DhNeed[], sliceSteps: number): DhWork {
  const w: DhWork = { jobs: [], at: 0, results: [], done: false };
  if (sliceSteps <= 0) {
    for (let i = 0; i < needs.length; i++) w.results.push(p.x25519(needs[i][0], needs[i][1]));
    w.done = true;
    return w;
  }
  for (let i = 0; i < needs.length; i++) w.jobs.push(x25519Start(needs[i][0], needs[i][1]));
  return w;
}

/** One slice: at most `ladderSteps` ladder steps' worth of field operations. True when all is done. */
export function workStep(w: DhWork, ladderSteps: number): boolean {
  if (w.done) return true;
  const job = w.jobs[w.at];
  if (x25519Step(job, ladderSteps)) {
    w.results.push(x25519Result(job));
    w.at = w.at + 1;
    if (w.at === w.jobs.length) w.done = true;
  }
  return w.done;
}
