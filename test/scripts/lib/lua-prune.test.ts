import assert from "node:assert/strict";
import { pruneFalseFeatures } from "../../../scripts/lib/lua-prune";

const lua = (...lines: string[]) => lines.join("\n");

describe("Lua bundles drop the branches a board's features rule out", () => {
  const off = { SESAME_HOST_RECORDS: false, SESAME_DH: true };

  it("drops an if on a false feature, or keeps only its else part, dedented", () => {
    const code = lua(
      "function f(a)",
      "    if SESAME_HOST_RECORDS and a.hook ~= nil then",
      "        a:hook()",
      "        return 1",
      "    end",
      "    if SESAME_HOST_RECORDS then",
      "        x = 1",
      "    else",
      "        local y = 2",
      "        if y then",
      "            x = y",
      "        end",
      "    end",
      "    return x",
      "end",
    );
    assert.equal(pruneFalseFeatures(code, off), lua(
      "function f(a)",
      "    local y = 2",
      "    if y then",
      "        x = y",
      "    end",
      "    return x",
      "end",
    ));
  });

  it("leaves alone a true feature, an unknown name, an `or`, an elseif, and a condition over several lines", () => {
    const code = lua(
      "    if SESAME_DH and a then",
      "        b()",
      "    end",
      "    if SESAME_OTHER and a then",
      "        b()",
      "    end",
      "    if SESAME_HOST_RECORDS and a or b then",
      "        c()",
      "    end",
      "    if SESAME_HOST_RECORDS and a then",
      "        c()",
      "    elseif b then",
      "        d()",
      "    end",
      "    if SESAME_HOST_RECORDS and (a",
      "        or b) then",
      "        c()",
      "    end",
    );
    assert.equal(pruneFalseFeatures(code, off), code);
  });
});
