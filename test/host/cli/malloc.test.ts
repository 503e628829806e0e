// The allocator sesame's processes run on (host/cli/malloc.ts): glibc's malloc, jemalloc preloaded on
// SESAME_MALLOC=jemalloc, and a clear error for a setting that cannot be honoured. The real
// check is a controller started as `sesame start` starts one, read from its /proc/<pid>/maps.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { allocatorEnv, allocatorOf, jemallocPath, JEMALLOC_SO } from "../../../host/cli/malloc";
import { generateToken } from "../../../host/controller/tokens";
import { startControllerProcess } from "../../harness/controller-process";

const LIB = `/opt/lib/${JEMALLOC_SO}`;
const at = () => LIB;
const nowhere = () => undefined;

describe("cli: the allocator of sesame's processes", () => {
  it("SESAME_MALLOC=jemalloc preloads it, before any other preload, and only once", () => {
    const env = { PATH: "/bin", SESAME_MALLOC: "jemalloc" };
    assert.deepEqual(allocatorEnv(env, at), { env: { ...env, LD_PRELOAD: LIB }, allocator: "jemalloc", note: `jemalloc (${LIB})` });
    assert.equal(allocatorEnv({ SESAME_MALLOC: "jemalloc", LD_PRELOAD: "/x/libfoo.so" }, at).env.LD_PRELOAD, `${LIB}:/x/libfoo.so`);
    const already = { SESAME_MALLOC: "jemalloc", LD_PRELOAD: `/usr/lib/${JEMALLOC_SO}` };
    assert.equal(allocatorEnv(already, at).env, already, "already preloaded: left as it is");
  });

  it("glibc's malloc by default (an environment left as it is), and on SESAME_MALLOC=glibc (jemalloc taken out of an inherited preload)", () => {
    const unset = allocatorEnv({ PATH: "/bin" }, at);
    assert.deepEqual(unset.env, { PATH: "/bin" });
    assert.equal(unset.allocator, "glibc");
    assert.match(unset.note, /SESAME_MALLOC=jemalloc/);
    assert.equal(allocatorEnv({ LD_PRELOAD: LIB }, at).allocator, "jemalloc", "a preload of the operator's own is said as it is");
    assert.deepEqual(allocatorEnv({ SESAME_MALLOC: "glibc", LD_PRELOAD: `${LIB}:/x/libfoo.so` }, at).env, { SESAME_MALLOC: "glibc", LD_PRELOAD: "/x/libfoo.so" });
    assert.deepEqual(allocatorEnv({ SESAME_MALLOC: "glibc", LD_PRELOAD: LIB }, at).env, { SESAME_MALLOC: "glibc" });
  });

  it("refuses a setting it cannot honour, saying how to fix it", () => {
    assert.throws(() => allocatorEnv({ SESAME_MALLOC: "jemalloc" }, nowhere), /SESAME_MALLOC=jemalloc, but libjemalloc\.so\.2 is not installed: apt-get install libjemalloc2/);
    assert.throws(() => allocatorEnv({ SESAME_MALLOC: "tcmalloc" }, at), /SESAME_MALLOC=tcmalloc: use jemalloc or glibc \(the default\)/);
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

  it("a controller started as `sesame start` starts it runs on glibc's malloc, and on jemalloc when told (CI installs it)", async function () {
    this.timeout(120_000);
    if (jemallocPath() === undefined) {
      if (process.env.CI) assert.fail("libjemalloc2 is not installed (apt-get install libjemalloc2; .ci/run does)");
      this.skip();
    }
    assert.equal(allocatorOf(), "glibc", "the test process itself is not preloaded");
    for (const [env, want] of [[{ ...process.env, SESAME_MALLOC: undefined }, "glibc"], [{ ...process.env, SESAME_MALLOC: "jemalloc" }, "jemalloc"]] as const) {
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
