// The runtime's image lookup is the client's resolve() (client/image/resolve.ts); its errors are
// re-exported here for the run verbs, which answer a miss with a pull or exit code 125.
export { ImageNotFoundError, PlatformMismatchError, type ResolvedImage } from '../client/image/resolve.js';
