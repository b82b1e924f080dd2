// What the routes tell the webhook notifier (server/notifications/notifier.ts). Types only: without a
// `notifications:` section the notifier is never loaded and each call site costs one `?.` on undefined.
import type { Descriptor } from '../../oci/manifest.js';
import type { NotificationWrite } from '../../storage/registry-metadata.js';
import type { RegistryContext } from '../context.js';
import type { EventAction } from './config.js';

/** What an event is about: distribution's `target`, less what the notifier adds (url, length). */
export interface EventTarget {
  repository: string;
  /** Whose URL `target.url` is: a manifest's or a blob's; none for deletes. */
  kind?: 'manifest' | 'blob';
  mediaType?: string;
  digest?: string;
  size?: number;
  tag?: string;
  /** A mount's source repository. */
  fromRepository?: string;
  /** With `events.includereferences`: what a manifest references. */
  references?: Descriptor[];
}

export interface ManifestPushed {
  digest: string;
  mediaType: string;
  size: number;
  tags: string[];
  references: Descriptor[];
}

export interface RequestNotifier {
  /** `events.includereferences` is on: manifest events list their references. */
  readonly includeReferences: boolean;
  /** Some endpoint takes events of this action (pull events cost nothing when every endpoint ignores them). */
  wants(action: EventAction): boolean;
  /**
   * Queues one event per target for every endpoint that does not ignore it; resolves once they are
   * stored. Never rejects: an event that could not be stored is logged as lost.
   */
  record(ctx: RegistryContext, action: EventAction, targets: EventTarget[]): Promise<void>;
  /**
   * The push events of a manifest: `build` makes them for the store to queue in the manifest's own
   * write; `queued` is called once that write is done, to start their delivery.
   */
  manifestPushEvents(ctx: RegistryContext, name: string): { build(m: ManifestPushed): NotificationWrite[]; queued(): void };
}
