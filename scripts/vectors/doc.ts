// Refreshes every ```vector block in docs/PROTOCOL.md from test/vectors/*.json, by case name, after a
// vector file was regenerated. (test/docs/protocol.test.ts fails until the two agree.)
// Run: tsx scripts/vectors/doc.ts
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

type Case = { name: string; op: string; args: string[]; out: string };
const dir = new URL("../../test/vectors/", import.meta.url);
const cases = new Map<string, Case>();
for (const f of readdirSync(dir).filter((n) => n.endsWith(".json")))
  for (const c of JSON.parse(readFileSync(new URL(f, dir), "utf8")).cases as Case[]) cases.set(c.name, c);
const docUrl = new URL("../../docs/PROTOCOL.md", import.meta.url);
let missing = 0;
const doc = readFileSync(docUrl, "utf8").replace(/```vector\n([\s\S]*?)```/g, (block, body: string) => {
  const name = /^case:\s*(.*)$/m.exec(body)?.[1].trim() ?? "";
  const c = cases.get(name);
  if (!c) {
    missing++;
    console.error(`no vector named "${name}"`);
    return block;
  }
  return "```vector\ncase: " + c.name + "\nop:   " + c.op + "\n" + c.args.map((a) => "arg:  " + a).join("\n") + "\nout:  " + c.out + "\n```";
});
writeFileSync(docUrl, doc);
console.log(missing ? `${missing} block(s) name no vector` : "docs/PROTOCOL.md vector blocks refreshed");
