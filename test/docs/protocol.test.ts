import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";

type Case = { name: string; op: string; args: string[]; out: string };

// The spec shows vectors in ```vector blocks; each must be, field for field, a case of a vector file,
// so the document and the code the vectors run against cannot drift apart.
describe("docs/PROTOCOL.md", () => {
  const doc = readFileSync("docs/PROTOCOL.md", "utf8");
  const blocks = [...doc.matchAll(/```vector\n([\s\S]*?)```/g)].map((m) => m[1]);
  const all: Case[] = readdirSync("test/vectors")
    .filter((f) => f.endsWith(".json"))
    .flatMap((f) => JSON.parse(readFileSync(`test/vectors/${f}`, "utf8")).cases as Case[]);

  it("shows vectors", () => assert.ok(blocks.length >= 5, `only ${blocks.length} vector blocks`));

  it("shows only vectors that the test suite runs, exactly as they are in test/vectors", () => {
    for (const b of blocks) {
      const field = (k: string) => [...b.matchAll(new RegExp(`^${k}:\\s*(.*)$`, "gm"))].map((m) => m[1].trim());
      const [name] = field("case");
      const c = all.find((x) => x.name === name);
      assert.ok(c, `the document's vector "${name}" is in no vector file`);
      assert.equal(field("op")[0], c.op, name);
      assert.deepEqual(field("arg"), c.args, name);
      assert.equal(field("out")[0], c.out, name);
    }
  });
});
