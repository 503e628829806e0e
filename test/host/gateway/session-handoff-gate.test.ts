// The seal gate of a handed-over session (SessionHandoff.maySeal) as the device side asks it, with the entry
// seen() gave kept on the device's state: it must answer exactly as the look-up by session does, before a
// grant, after one, and once the session is taken by another gateway.
import assert from "node:assert/strict";
import { sessionNew, type Session } from "../../../firmware/session/session";
import type { AppMessage } from "../../../host/backbone/frame";
import { hostProvider } from "../../../host/crypto/provider";
import { SEAL_MARGIN, SessionHandoff } from "../../../host/gateway/session-handoff";
import { sessionAnswer } from "../../../host/backbone/session-handoff";
import { handshake, policy } from "../../harness/sessions";

const answer = sessionAnswer;

describe("session handoff: the seal gate with the entry kept", () => {
  it("answers as the look-up does before a grant, after one, and once the session is taken; another session's entry is not used", () => {
    const reports: AppMessage[] = [];
    const handoff = new SessionHandoff((m) => (reports.push(m), true));
    const session = (): Session => sessionNew(policy(hostProvider, { store: handoff.storage, seqBlock: 1024 }), handshake().er, 0);
    const s = session();
    const kept = handoff.seen(s);
    assert.equal(handoff.seen(s), kept, "seen() again gives the same entry");
    assert.equal(reports.length, 1, "reported once");
    const both = () => {
      const a = handoff.maySeal(s, kept);
      assert.equal(a, handoff.maySeal(s), "the kept entry and the look-up disagree");
      return a;
    };

    assert.equal(both(), true, "its first block needs no grant");
    s.out.seq.next = kept.granted - SEAL_MARGIN + 1;
    assert.equal(both(), false, "past the granted top, less the margin");
    assert.equal(handoff.answer(answer(kept.spi, `grant,${s.out.epoch.index},${kept.granted + 1024}`), 0), "");
    assert.equal(both(), true, "a grant opens the gate");
    s.out.seq.next = kept.granted;
    assert.equal(both(), false);

    // An entry kept for another session (the device's previous one) is not used: the look-up answers (s is
    // still held at its gate, while that entry's numbers would let it through).
    const other = { ...kept, s: session(), granted: kept.granted + (1 << 20) };
    assert.equal(handoff.maySeal(s, other), false);

    assert.equal(handoff.answer(answer(kept.spi, "taken"), 0), "");
    assert.equal(kept.dropped, true);
    assert.equal(both(), true, "a session no longer handed over is not gated here");
  });
});
