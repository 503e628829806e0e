// The allocator sesame's processes run on (host/cli/malloc.ts): jemalloc preloaded when installed, glibc's
// malloc on request or without it, and a clear error for a setting that cannot be honoured. The real
// check is a controller started as `sesame start` starts one, read from its /proc/<pid>/maps.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { allocatorEnv, allocatorOf, jemallocPath, JEMALLOC_SO } from "../../../host/cli/malloc";
import { generateToken } from "../../../host/controller/tokens";
import { startControllerProcess } from "../../harness/controller-process";

const LIB = `/opt/lib/${JEMALLOC_SO}`;

describe("cli: the allocator of sesame's processes", () => {
  it("preloads jemalloc when the system has it, before any other preload, and only once", () => {
    assert.deepEqual(allocatorEnv({ PATH: "/bin" }, LIB), { env: { PATH: "/bin", LD_PRELOAD: LIB }, allocator: "jemalloc", note: `jemalloc (${LIB})` });
    assert.equal(allocatorEnv({ LD_PRELOAD: "/x/libfoo.so" }, LIB).env.LD_PRELOAD, `${LIB}:/x/libfoo.so`);
    const already = { LD_PRELOAD: `/usr/lib/${JEMALLOC_SO}` };
    assert.equal(allocatorEnv(already, LIB).env, already, "already preloaded: left as it is");
    assert.equal(allocatorEnv({ SESAME_MALLOC: "jemalloc" }, LIB).allocator, "jemalloc");
  });

  it("keeps glibc's malloc on SESAME_MALLOC=glibc (taking jemalloc out of an inherited preload) or without jemalloc", () => {
    assert.deepEqual(allocatorEnv({ SESAME_MALLOC: "glibc", LD_PRELOAD: `${LIB}:/x/libfoo.so` }, LIB).env, { SESAME_MALLOC: "glibc", LD_PRELOAD: "/x/libfoo.so" });
    assert.deepEqual(allocatorEnv({ SESAME_MALLOC: "glibc", LD_PRELOAD: LIB }, LIB).env, { SESAME_MALLOC: "glibc" });
    const none = allocatorEnv({ PATH: "/bin" }, null);
    assert.deepEqual(none.env, { PATH: "/bin" });
    assert.equal(none.allocator, "glibc");
    assert.match(none.note, /install libjemalloc2/);
  });

  it("refuses a setting it cannot honour, saying how to fix it", () => {
    assert.throws(() => allocatorEnv({ SESAME_MALLOC: "jemalloc" }, null), /SESAME_MALLOC=jemalloc, but libjemalloc\.so\.2 is not installed: apt-get install libjemalloc2/);
    assert.throws(() => allocatorEnv({ SESAME_MALLOC: "tcmalloc" }, LIB), /SESAME_MALLOC=tcmalloc: use jemalloc \(the default when installed\) or glibc/);
  });

  it("finds the library where the system keeps it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-malloc-"));
    try {
      assert.equal(jemallocPath([path.join(dir, "none"), dir]), undefined);
      fs.writeFileSync(path.join(dir, JEMALLOC_SO), "");
      assert.equal(jemallocPath([path.join(dir, "none"), dir]), path.join(dir, JEMALLOC_SO));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a controller started as `sesame start` starts it runs on jemalloc when installed (CI installs it), on glibc when told", async function () {
    this.timeout(120_000);
    if (jemallocPath() === undefined) {
      if (process.env.CI) assert.fail("libjemalloc2 is not installed (apt-get install libjemalloc2; .ci/run does)");
      this.skip();
    }
    assert.equal(allocatorOf(), "glibc", "the test process itself is not preloaded");
    for (const [env, want] of [[{ ...process.env, SESAME_MALLOC: undefined }, "jemalloc"], [{ ...process.env, SESAME_MALLOC: "glibc" }, "glibc"]] as const) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sesame-malloc-"));
      const ctl = await startControllerProcess({ dir, tokens: `t:${generateToken().sha256}`, env });
      try {
        assert.equal(allocatorOf(ctl.proc.pid!), want);
      } finally {
        await ctl.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
