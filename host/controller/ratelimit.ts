// Token buckets per client: `burst` requests at once, refilled at `perSecond`. Keys are token ids for
// authenticated callers and remote addresses for failed or missing credentials. The table is bounded: past
// `maxKeys` the least recently seen client is forgotten (it comes back with a full bucket), so a flood
// of addresses costs memory only up to the bound.
export type BucketSpec = { burst: number; perSecond: number };

type Bucket = { tokens: number; at: number };

export type Verdict = { ok: true } | { ok: false; retryAfterSec: number };

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly spec: BucketSpec,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = () => Date.now(),
  ) {
    if (!(spec.burst >= 1) || !(spec.perSecond > 0)) throw new RangeError("rate limit: burst must be >= 1 and perSecond > 0");
  }

  /** Spends one token if there is one. */
  take(key: string): Verdict {
    const b = this.refill(key);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return this.refusal(b);
  }

  /** Whether a token is there, without spending it. */
  peek(key: string): Verdict {
    const b = this.refill(key);
    return b.tokens >= 1 ? { ok: true } : this.refusal(b);
  }

  private refusal(b: Bucket): Verdict {
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((1 - b.tokens) / this.spec.perSecond)) };
  }

  private refill(key: string): Bucket {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.spec.burst, at: t };
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
    } else {
      b.tokens = Math.min(this.spec.burst, b.tokens + ((t - b.at) / 1000) * this.spec.perSecond);
      b.at = t;
      this.buckets.delete(key); // re-insert: Map order is recency order
    }
    this.buckets.set(key, b);
    return b;
  }
}
