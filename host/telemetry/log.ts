// Structured logs: one JSON object per line, {time, level, component, msg, fields}, ready for Fluent Bit or
// `jq`. Every field goes through redact() (./redact.ts), so keys, plaintext and payload bytes never reach the
// stream whatever a caller passes. Levels follow the SES guide: info for success, warn for throttling and
// drops, error for failures; debug for detail an operator turns on with SESAME_LOG_LEVEL=debug.
import { redact } from "./redact";

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Where lines go: anything with write(string), e.g. process.stderr, a file stream, or an array in a test. */
export type LogSink = { write(line: string): unknown };

export type LoggerOptions = {
  component?: string;
  /** Overrides SESAME_LOG_LEVEL. */
  level?: LogLevel;
  /** Default: process.stderr (stdout stays free for a CLI's own output and the status line). */
  stream?: LogSink;
  /** Fields bound to every line of this logger and its children. */
  fields?: LogFields;
  /** Milliseconds since the epoch; injectable so tests get stable timestamps. */
  now?: () => number;
};

export function isLogLevel(s: unknown): s is LogLevel {
  return typeof s === "string" && (LOG_LEVELS as readonly string[]).includes(s);
}

/** The level SESAME_LOG_LEVEL asks for, or info with a reason when it names no level. */
export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): { level: LogLevel; problem?: string } {
  const raw = env.SESAME_LOG_LEVEL;
  if (raw === undefined || raw.trim() === "") return { level: "info" };
  const v = raw.trim().toLowerCase();
  if (isLogLevel(v)) return { level: v };
  return { level: "info", problem: `SESAME_LOG_LEVEL=${JSON.stringify(raw)} is not a level; use one of ${LOG_LEVELS.join(", ")}` };
}

type Shared = { stream: LogSink; now: () => number; level: LogLevel };

export class Logger {
  private constructor(
    private readonly shared: Shared,
    readonly component: string,
    private readonly bound: LogFields,
  ) {}

  static create(opts: LoggerOptions = {}): Logger {
    const env = levelFromEnv();
    const shared: Shared = { stream: opts.stream ?? process.stderr, now: opts.now ?? Date.now, level: opts.level ?? env.level };
    const log = new Logger(shared, opts.component ?? "sesame", opts.fields ?? {});
    // A mistyped level must not stop the program, and must not pass unnoticed either.
    if (opts.level === undefined && env.problem !== undefined) log.warn("log level from environment ignored", { reason: env.problem });
    return log;
  }

  /** The level shared by this logger, its parent and its children. */
  get level(): LogLevel {
    return this.shared.level;
  }
  set level(level: LogLevel) {
    if (!isLogLevel(level)) throw new TypeError(`log level must be one of ${LOG_LEVELS.join(", ")}, not ${JSON.stringify(level)}`);
    this.shared.level = level;
  }

  /** Whether a line at `level` would be written: lets a hot path skip building its fields. */
  enabled(level: Exclude<LogLevel, "silent">): boolean {
    return RANK[level] >= RANK[this.shared.level];
  }

  /** A logger for a part of the program: same stream and level, its own component and extra bound fields. */
  child(component: string | undefined, fields: LogFields = {}): Logger {
    return new Logger(this.shared, component ?? this.component, { ...this.bound, ...fields });
  }

  debug(msg: string, fields?: LogFields): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write("error", msg, fields);
  }

  private write(level: Exclude<LogLevel, "silent">, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const all = fields === undefined ? this.bound : { ...this.bound, ...fields };
    const record: Record<string, unknown> = {
      time: new Date(this.shared.now()).toISOString(),
      level,
      component: this.component,
      msg: redact(String(msg)),
    };
    if (Object.keys(all).length > 0) record.fields = redact(all);
    try {
      this.shared.stream.write(`${JSON.stringify(record)}\n`);
    } catch {
      // A closed or broken log stream (EPIPE) must not take the controller down with it.
    }
  }
}

/** A logger that writes nothing: the default for library classes given no logger. */
export function silentLogger(): Logger {
  return Logger.create({ level: "silent", stream: { write: () => undefined } });
}

/** Collects lines in memory (tests, and callers that want to show recent lines in a panel). */
export function memorySink(): LogSink & { lines: string[]; records(): Record<string, unknown>[] } {
  const lines: string[] = [];
  return {
    lines,
    write(line: string) {
      lines.push(line);
    },
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/**
 * Warnings under a flood (a client spamming bad input, a long outage) are capped: at most `max` per
 * `windowMs`, then one line saying how many were suppressed.
 */
export class LimitedWarnings {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly max = 20,
    private readonly windowMs = 10_000,
  ) {}

  warn(msg: string, fields: LogFields): void {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) this.log.warn("warnings suppressed", { count: this.suppressed });
      this.windowStart = now;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count++ < this.max) this.log.warn(msg, fields);
    else this.suppressed++;
  }
}
