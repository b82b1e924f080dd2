// What the conformance suite runs against: any registry reachable over HTTP.

export interface RunningTarget {
  /** Base URL, e.g. http://127.0.0.1:5000 */
  url: string;
  stop?(): Promise<void>;
}

export interface ConformanceTarget {
  /** Shown as the top-level test name. */
  name: string;
  /** Starts (or just connects to) the registry. */
  start(): Promise<RunningTarget>;
  /**
   * Tests this target is known to fail, by test id, with the reason; they are skipped for this
   * target and listed in docs/conformance.md. Reasons say which spec version the target predates.
   */
  knownGaps?: Readonly<Record<string, string>>;
  /** Set when the target cannot run on this machine (e.g. its binary is missing): everything is skipped. */
  unavailable?: string;
}

/** A registry that is already running somewhere, e.g. BERTH_CONFORMANCE_URL. */
export function urlTarget(url: string, opts: { name?: string; knownGaps?: Record<string, string> } = {}): ConformanceTarget {
  return {
    name: opts.name ?? `registry at ${url}`,
    start: async () => ({ url: url.replace(/\/+$/, '') }),
    ...(opts.knownGaps ? { knownGaps: opts.knownGaps } : {}),
  };
}
