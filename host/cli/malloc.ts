// The memory allocator sesame's processes run on: glibc's malloc, or jemalloc with SESAME_MALLOC=jemalloc
// (Debian: libjemalloc2), which shortens a gateway's latency tail and costs bulk backbone traffic CPU.
//
// The tail: every record a gateway opens leaves a native buffer (node:crypto returns each cipher output in
// a fresh one, and has no update into a caller's buffer), about 20,000 of them between two scavenges at
// 50,000 readings/s. V8 frees them on its helper threads after each scavenge; glibc puts those small chunks
// in the main arena's fastbins, and the main thread's next request of 1 KiB or more (a backbone record, a
// slab) consolidates them all at once. perf on a gateway at 50,000 msg/s offered, 10 s: malloc_consolidate
// and unlink_chunk on the main thread in bursts 330 ms apart (the scavenges' period), about 5 ms each, and
// every reading that waits behind one lands in the P99. jemalloc frees into the freeing thread's caches and
// never makes the main thread coalesce them. `npm run bench -- bridge`, two runs on each, in turn: P99 at
// 50,000 msg/s offered 1.71 and 0.91 ms on jemalloc, 2.39 and 5.56 ms on glibc; terminate 158k and 207k
// msg/s against 155k and 122k (the raw node:crypto CCM open the bench compares with gains more: 278k and
// 282k against 214k and 179k, a cipher context per record being mostly allocation).
// The cost: `npm run bench -- bulk`, glibc, jemalloc, glibc in turn: the backbone sender's CPU per MB about
// 1.2 ms on jemalloc against 0.6 to 0.9 on glibc at 64 KiB to 10 MiB (1.7 against 1.2 at 1 KiB), most of
// the difference in the kernel (each record's cipher output is fresh buffers of 64 KiB slices), and neither
// jemalloc setting tried (no decay at all; a background thread with 5 s decay) brought it back. So glibc
// stays the default.
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
 * The environment a sesame child process gets for SESAME_MALLOC in `env`: jemalloc (where `find` says;
 * looked for only then) preloaded for =jemalloc, jemalloc taken out of an inherited LD_PRELOAD for =glibc,
 * `env` as it is when unset. Throws on a value it does not know, or =jemalloc on a system without it,
 * saying how to fix it.
 */
export function allocatorEnv(env: NodeJS.ProcessEnv, find: () => string | undefined = jemallocPath): Allocator {
  const want = env.SESAME_MALLOC ?? "";
  if (want !== "" && want !== "jemalloc" && want !== "glibc") throw new Error(`SESAME_MALLOC=${want}: use jemalloc or glibc (the default)`);
  const preload = env.LD_PRELOAD ?? "";
  const preloaded = preload.includes(JEMALLOC_SO);
  if (want === "glibc") {
    const rest = preload.split(":").filter((p) => p !== "" && !p.includes(JEMALLOC_SO)).join(":");
    const { LD_PRELOAD: _, ...others } = env;
    return { env: rest === "" ? others : { ...others, LD_PRELOAD: rest }, allocator: "glibc", note: "glibc malloc (SESAME_MALLOC=glibc)" };
  }
  if (preloaded) return { env, allocator: "jemalloc", note: `jemalloc (${preload})` };
  if (want === "") return { env, allocator: "glibc", note: "glibc malloc (SESAME_MALLOC=jemalloc: a shorter latency tail, dearer bulk)" };
  const lib = find();
  if (lib === undefined) throw new Error(`SESAME_MALLOC=jemalloc, but ${JEMALLOC_SO} is not installed: apt-get install libjemalloc2 (or unset SESAME_MALLOC)`);
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
