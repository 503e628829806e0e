// Supervision of the processes `sesame start` runs: a child that dies is said at once and started again,
// after a delay that doubles with each death in quick succession (so a child that cannot start does not
// spin), and that falls back to the shortest once a run has lasted `stableMs`. The arguments are asked for
// afresh at each start, so a restarted child gets the ports and files its first run settled on.
//
//   STARTING --ready line--> UP --exit--> DOWN --delay--> STARTING --exit before ready--> DOWN ...
//   any --stop()--> STOPPED
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import type { Logger } from "../telemetry/log";
import { spawnSesame, type Ready } from "./spawn";

export const CHILD_STARTING = "starting";
export const CHILD_UP = "up";
export const CHILD_DOWN = "down";
export const CHILD_STOPPED = "stopped";
export type ChildState = typeof CHILD_STARTING | typeof CHILD_UP | typeof CHILD_DOWN | typeof CHILD_STOPPED;

export type SuperviseOptions = {
  /** The first restart's delay; doubled for each death that follows a short run, up to maxDelayMs. */
  minDelayMs: number;
  maxDelayMs: number;
  /** A run this long resets the delay to minDelayMs. */
  stableMs: number;
};

export const DEFAULT_SUPERVISE: SuperviseOptions = { minDelayMs: 500, maxDelayMs: 30_000, stableMs: 30_000 };

/** Starts one run of a child: `sesame <args>` by default (spawnSesame), or a server (./local-servers.ts). */
export type Launch = (args: string[], name: string, log: Logger) => { proc: ChildProcess; ready: Promise<Ready> };

/** How a child ended, in words: "exit 1" or "killed by SIGKILL". */
export function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exit ${code}`;
}

/**
 * One supervised child: a `sesame <command>`, or a server `launch` starts. Events: 'ready' (Ready, restarts), 'died' (why, delayMs),
 * 'line' (a human sentence about it, for the terminal).
 */
export class Supervised extends EventEmitter {
  state: ChildState = CHILD_STARTING;
  restarts = 0;
  /** The ready line of the current (or last) run. */
  ready: Ready | undefined;
  /** When a DOWN child is next started (ms since the epoch). */
  restartAt = 0;
  private proc: ChildProcess | undefined;
  private delayMs: number;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: SuperviseOptions;

  constructor(
    readonly name: string,
    private readonly args: () => string[],
    private readonly log: Logger,
    opts: Partial<SuperviseOptions> = {},
    private readonly launch: Launch = spawnSesame,
  ) {
    super();
    this.opts = { ...DEFAULT_SUPERVISE, ...opts };
    this.delayMs = this.opts.minDelayMs;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /**
   * The first start: resolves with the ready line, rejects (and stays stopped) when the child exits before
   * it is ready, since a first start that fails is a configuration to fix, not a crash to repair.
   */
  async start(): Promise<Ready> {
    const r = await this.run();
    if (r instanceof Error) {
      this.state = CHILD_STOPPED;
      throw r;
    }
    return r;
  }

  /** Stops supervising and ends the child (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(graceMs = 5000): Promise<void> {
    this.state = CHILD_STOPPED;
    clearTimeout(this.timer);
    const p = this.proc;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    const kill = setTimeout(() => p.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(kill);
  }

  /** One run up to its ready line; the Error when it ended before. */
  private async run(): Promise<Ready | Error> {
    this.state = CHILD_STARTING;
    const { proc, ready } = this.launch(this.args(), this.name, this.log);
    this.proc = proc;
    this.startedAt = Date.now();
    proc.once("exit", (code, signal) => this.exited(proc, exitText(code, signal)));
    try {
      this.ready = await ready;
    } catch (e) {
      return e as Error;
    }
    if (this.state !== CHILD_STARTING || this.proc !== proc) return new Error(`${this.name} stopped while starting`);
    this.state = CHILD_UP;
    this.emit("ready", this.ready, this.restarts);
    return this.ready;
  }

  private exited(proc: ChildProcess, why: string): void {
    if (this.proc !== proc || this.state === CHILD_STOPPED) return;
    // A first start that fails is start()'s to report; only a child that was up, or a restart, is repaired.
    if (this.restarts === 0 && this.state === CHILD_STARTING) return;
    const ran = Date.now() - this.startedAt;
    if (ran >= this.opts.stableMs) this.delayMs = this.opts.minDelayMs;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.opts.maxDelayMs, this.delayMs * 2);
    this.state = CHILD_DOWN;
    this.restartAt = Date.now() + delay;
    this.emit("died", why, delay);
    this.emit("line", `the ${this.name} died (${why}) after ${formatSeconds(ran)}; restarting it in ${formatSeconds(delay)}`);
    this.timer = setTimeout(() => void this.restart(), delay);
  }

  private async restart(): Promise<void> {
    if (this.state !== CHILD_DOWN) return;
    this.restarts++;
    const r = await this.run();
    // A failed restart is handled by exited(), which schedules the next one.
    if (!(r instanceof Error)) this.emit("line", `the ${this.name} is back (restart ${this.restarts})`);
  }
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
