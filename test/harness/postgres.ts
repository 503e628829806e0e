// A throwaway real Postgres for tests: initdb into a temp directory, start `postgres` on a free port (unix
// socket in the same directory), wait until it accepts connections, and remove everything on stop.
// Debian's packages put the binaries in /usr/lib/postgresql/<version>/bin (CI installs them, .ci/run).
// Postgres refuses to run as root, so under root (CI) the server runs as the `postgres` system user.
// No binaries is a failure that says what to install, never a silent skip.
import { spawn, type ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { findPostgresBin, initPostgres, POSTGRES_ENV, postgresUser } from "../../host/cli/local-servers";

export { findPostgresBin };

export type TestPostgres = {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /** kill -9 of the server and every backend (the machine it runs on died). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data, killing it first if it runs. */
  restart(): Promise<void>;
  /** A new empty database on this server; returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, server: ChildProcess, log: () => string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`postgres exited with code ${server.exitCode}:\n${log()}`);
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.query("SELECT 1");
      await c.end();
      return;
    } catch {
      await c.end().catch(() => {});
      if (Date.now() > until) throw new Error(`postgres did not accept connections within ${timeoutMs} ms:\n${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Processes whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // stat: pid (comm) state ppid ...; comm may hold spaces, so read after its closing parenthesis.
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(d));
    } catch {
      // exited while listed
    }
  }
  return out;
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = findPostgresBin();
  const user = postgresUser();
  const dir = mkdtempSync(join(tmpdir(), "sesame-pg-"));
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid!);
  const data = join(dir, "data");
  const env = POSTGRES_ENV;
  try {
    initPostgres(bin, data, dir, user);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let output = "";
  let server: ChildProcess;
  let exited: Promise<void>;
  const launch = async () => {
    output = "";
    server = spawn(
      join(bin, "postgres"),
      ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"],
      { ...user, env, stdio: ["ignore", "pipe", "pipe"], cwd: dir },
    );
    const keep = (b: Buffer) => void (output = (output + b.toString()).slice(-8000));
    server.stdout!.on("data", keep);
    server.stderr!.on("data", keep);
    exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
    await waitReady(url, server, () => output);
  };
  const running = () => server.exitCode === null && server.signalCode === null;
  // kill -9 of the postmaster and of every backend it has (each is its own process group, so not by group), as a
  // machine that dies would: the data directory can then be started again at once.
  const kill = async () => {
    if (!running()) return;
    const backends = childrenOf(server.pid!);
    process.kill(server.pid!, "SIGKILL");
    for (const pid of backends) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    await exited;
  };
  const stop = async () => {
    if (running()) {
      server.kill("SIGINT"); // fast shutdown: ends client sessions, no waiting for them
      const timer = setTimeout(() => void kill(), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await launch();
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url, port, stop,
    async kill() {
      await kill();
    },
    /** Starts it again on the same port and data (after kill: it recovers from its write-ahead log). */
    async restart() {
      await kill();
      // A backend forked as the postmaster died holds the shared memory until it notices: try again shortly.
      for (let tries = 0; ; tries++) {
        try {
          return await launch();
        } catch (e) {
          if (tries >= 50 || !/pre-existing shared memory/.test(String(e))) throw e;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
    async createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error("createDatabase: name must be a plain identifier");
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
  };
}
