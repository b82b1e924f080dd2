// Slows down password guessing: a client address that failed authentication `failures` times
// within `windowMs` gets 429 TOOMANYREQUESTS for every further attempt with credentials until the
// oldest of those failures leaves the window (a sliding window, so a patient guesser gets at most
// `failures` tries per window). Only this address's own failures count; nobody's success resets
// anything (an attacker holding one valid account cannot interleave its logins with guesses at
// another's). Memory is bounded: the `maxAddresses` most recently failing addresses are
// remembered, each with at most `failures` timestamps.
import { isIPv6 } from 'node:net';

export interface LimiterOptions {
  /** Failures within the window after which attempts are refused; 0 turns the limiter off. */
  failures: number;
  windowMs: number;
  maxAddresses: number;
}

export class FailureLimiter {
  /** Address key → times of its recent failures, oldest first; Map order is least recently failed first. */
  private readonly entries = new Map<string, number[]>();
  private readonly opts: LimiterOptions;
  private readonly now: () => number;

  constructor(opts: LimiterOptions, now: () => number = Date.now) {
    this.opts = opts;
    this.now = now;
  }

  get enabled(): boolean {
    return this.opts.failures > 0;
  }

  /** Addresses remembered (for tests of the bound). */
  get size(): number {
    return this.entries.size;
  }

  private recent(key: string, now: number): number[] | undefined {
    const times = this.entries.get(key);
    if (!times) return undefined;
    while (times.length > 0 && now - times[0]! >= this.opts.windowMs) times.shift();
    if (times.length === 0) {
      this.entries.delete(key);
      return undefined;
    }
    return times;
  }

  /** Seconds to wait when `address` may not try now (for Retry-After), else undefined. */
  retryAfter(address: string | undefined): number | undefined {
    if (!this.enabled) return undefined;
    const now = this.now();
    const times = this.recent(addressKey(address), now);
    if (!times || times.length < this.opts.failures) return undefined;
    return Math.max(1, Math.ceil((times[0]! + this.opts.windowMs - now) / 1000));
  }

  /** Records a failure; true when it is the one that starts a block (worth one log line). */
  fail(address: string | undefined): boolean {
    if (!this.enabled) return false;
    const now = this.now();
    const key = addressKey(address);
    const times = this.recent(key, now) ?? [];
    times.push(now);
    if (times.length > this.opts.failures) times.shift();
    // Most recently failing last: the first entry is the one to forget when the map is full.
    this.entries.delete(key);
    this.entries.set(key, times);
    while (this.entries.size > this.opts.maxAddresses) this.entries.delete(this.entries.keys().next().value!);
    return times.length === this.opts.failures;
  }
}

/**
 * The unit an attacker cannot cheaply multiply: an IPv4 address (also when IPv4-mapped), or the
 * /64 prefix of an IPv6 address (one host usually holds a whole /64).
 */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('%')[0]!.split('::');
  const h = head ? head.split(':') : [];
  const t = address.includes('::') && tail ? tail.split(':') : [];
  // An embedded IPv4 tail counts as two groups; it only ever sits in the low 64 bits.
  const tailGroups = t.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = address.includes('::') ? [...h, ...Array<string>(Math.max(0, 8 - h.length - tailGroups)).fill('0'), ...t] : h;
  return `${groups
    .slice(0, 4)
    .map((g) => (g.includes('.') ? g : g.replace(/^0+(?=.)/, '')))
    .join(':')}::/64`;
}
