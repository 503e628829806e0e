// TypeScriptToLua keeps every branch; a board's features (firmware/features.d.ts) are constants there too,
// so the code behind a false one is only skipped, never dropped. This drops it from the Lua text, as
// esbuild does for Espruino: an `if FLAG and <rest> then ... [else ...] end` (or `if FLAG then`) whose FLAG
// is false for the board becomes its else part, or nothing. `FLAG and <rest>` is false without evaluating
// <rest>, so nothing else changes. Only the plain form is touched: the whole condition on the `if` line,
// no `or` in it, no `elseif`, the parts at the `if`'s own indentation (TypeScriptToLua's layout).

const IF = /^(\s*)if (SESAME_[A-Z0-9_]+)(?: and (.*))? then$/;

export function pruneFalseFeatures(code: string, features: Record<string, boolean>): string {
  const lines = code.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = IF.exec(lines[i]);
    const block = m !== null && features[m[2]] === false && !/\bor\b/.test(m[3] ?? "") ? parts(lines, i, m[1]) : undefined;
    if (block === undefined) {
      out.push(lines[i]);
      continue;
    }
    if (block.elseAt >= 0) for (let k = block.elseAt + 1; k < block.endAt; k++) out.push(lines[k].startsWith(m![1] + "    ") ? m![1] + lines[k].slice(m![1].length + 4) : lines[k]);
    i = block.endAt;
  }
  return out.join("\n");
}

/** Where the `else` (or -1) and the `end` of the `if` at lines[at] are; undefined for any other shape. */
function parts(lines: string[], at: number, indent: string): { elseAt: number; endAt: number } | undefined {
  let elseAt = -1;
  for (let j = at + 1; j < lines.length; j++) {
    const l = lines[j];
    if (l === indent + "end") return { elseAt, endAt: j };
    if (l === indent + "else" && elseAt < 0) {
      elseAt = j;
      continue;
    }
    // Anything else at this indentation or shallower (an elseif, a second else, the enclosing block's
    // end): not the plain form.
    if (l.trim() !== "" && !l.startsWith(indent + " ")) return undefined;
  }
  return undefined;
}
