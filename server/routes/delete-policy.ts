import { RegistryError } from '../../oci/errors.js';
import type { RegistryContext } from '../context.js';

/** distribution-spec/spec.md#content-management: disabled deletion answers 405. */
export function requireDeleteEnabled(ctx: RegistryContext): void {
  if (!ctx.state.config.delete) throw new RegistryError('UNSUPPORTED', 'deletion is disabled on this registry (start berth serve with delete enabled)', { status: 405 });
}
