// The memory allocator sesame's processes run on: jemalloc when the system has it (Debian: libjemalloc2),
// glibc's malloc otherwise. SESAME_MALLOC=glibc keeps glibc's.
//
// Why: every record a gateway opens leaves a native buffer (node:crypto returns each cipher output in a
// fresh one, and has no update into a caller's buffer), about 20,000 of them between two scavenges at
// 50,000 readings/s. V8 frees them on its helper threads after each scavenge; glibc puts those small chunks
// in the main arena's fastbins, and the main thread's next request of 1 KiB or more (a backbone record, a
// slab) consolidates them all at once. perf on a gateway at 50,000 msg/s offered, 10 s: malloc_consolidate
// and unlink_chunk on the main thread in bursts 330 ms apart (the scavenges' period), about 5 ms each, and
// every reading that waits behind one lands in the P99. jemalloc frees into the freeing thread's caches and
// never makes the main thread coalesce them. Measured (`npm run bench -- bridge`, two runs on each, in
// turn): P99 at 50,000 msg/s offered 1.71 and 0.91 ms on jemalloc, 2.39 and 5.56 ms on glibc; terminate
// 158k and 207k msg/s against 155k and 122k. The raw node:crypto CCM open the bench compares with gains
// more (278k and 282k msg/s against 214k and 179k: a cipher context per record is mostly allocation).
import { existsSync, readFileSync } from "node:fs";

export const JEMALLOC_SO = "libjemalloc.so.2";
/** Where Debian, Fedora and a source build put it. */
const LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib/arm-linux-gnueabihf", "/usr/lib64", "/usr/lib", "/usr/local/lib"];

/** The path of libjemalloc.so.2 on this system, or undefined. */
export function jemallocPath(dirs: readonly string[] = LIB_DIRS): string | undefined {
  for (const d of dirs) {
    const p = `${d}/${JEMALLOC_SO}`;
    if (existsSync(p)) return p;
  }
  return undefined;
}

export type Allocator = { env: NodeJS.ProcessEnv; allocator: "jemalloc" | "glibc"; note: string };

/**
 * The environment a sesame child process gets: `env` with jemalloc (at `lib`; null: not installed)
 * preloaded, unless SESAME_MALLOC=glibc or LD_PRELOAD already names it. Throws on a SESAME_MALLOC it does
 * not know, or =jemalloc on a system without it, saying how to fix it.
 */
export function allocatorEnv(env: NodeJS.ProcessEnv, lib: string | null = jemallocPath() ?? null): Allocator {
  const want = env.SESAME_MALLOC ?? "";
  if (want !== "" && want !== "jemalloc" && want !== "glibc") throw new Error(`SESAME_MALLOC=${want}: use jemalloc (the default when installed) or glibc`);
  const preload = env.LD_PRELOAD ?? "";
  if (want === "glibc") {
    const rest = preload.split(":").filter((p) => p !== "" && !p.includes(JEMALLOC_SO)).join(":");
    const { LD_PRELOAD: _, ...others } = env;
    return { env: rest === "" ? others : { ...others, LD_PRELOAD: rest }, allocator: "glibc", note: "glibc malloc (SESAME_MALLOC=glibc)" };
  }
  if (preload.includes(JEMALLOC_SO)) return { env, allocator: "jemalloc", note: `jemalloc (${preload})` };
  if (lib === null) {
    if (want === "jemalloc") throw new Error(`SESAME_MALLOC=jemalloc, but ${JEMALLOC_SO} is not installed: apt-get install libjemalloc2 (or unset SESAME_MALLOC)`);
    return { env, allocator: "glibc", note: "glibc malloc (install libjemalloc2 for a shorter latency tail)" };
  }
  return { env: { ...env, LD_PRELOAD: preload === "" ? lib : `${lib}:${preload}` }, allocator: "jemalloc", note: `jemalloc (${lib})` };
}

/** The allocator a running process has mapped (Linux: /proc/<pid>/maps). */
export function allocatorOf(pid: number | "self" = "self"): "jemalloc" | "glibc" {
  try {
    return readFileSync(`/proc/${pid}/maps`, "utf8").includes(JEMALLOC_SO) ? "jemalloc" : "glibc";
  } catch {
    return "glibc";
  }
}
