// The same conformance suite against the reference registry (docker-registry 2.8, Debian): proof
// that the suite tests the spec, not Berth's quirks. Every test the reference fails is listed here
// with why, and in docs/conformance.md; everything else must pass against it.
import { defineConformanceSuite } from './suite.js';
import { referenceRegistryAvailable, startReferenceRegistry, REFERENCE_REGISTRY_BIN } from './fixtures/reference-registry.js';

const V1_1 = 'distribution 2.8 predates distribution-spec v1.1';

const OLD = 'distribution 2.8 (Debian\'s docker-registry)';

export const REFERENCE_KNOWN_GAPS: Record<string, string> = {
  // Not v1.1 features: spec MUSTs the 2.8 series does not implement.
  'push.blob.chunked-out-of-order': `${OLD} ignores Content-Range on PATCH and appends the chunk anyway (202, not 416)`,
  'push.blob.final-put-out-of-order': `${OLD} ignores Content-Range on the closing PUT: it appends, then fails the digest (400, not 416)`,
  'discovery.tags.list': `${OLD} lists tags in filesystem directory order, not lexical order`,
  'discovery.tags.paginate': `${OLD} ignores n and last on tags/list and always returns every tag`,
  'discovery.tags.last': `${OLD} ignores last on tags/list`,
  'discovery.tags.n-zero': `${OLD} ignores n on tags/list, so n=0 returns every tag`,
  // distribution-spec v1.1 features.
  'push.manifest.oci-subject-header': `${V1_1}: it ignores the subject field and sends no OCI-Subject header`,
  'push.manifest.tag-query': `${V1_1}: ?tag= on a push by digest is ignored (no tags, no OCI-Tag header)`,
  'discovery.referrers.list': `${V1_1}: no referrers API (GET /v2/<name>/referrers/<digest> is 404)`,
  'discovery.referrers.filter': `${V1_1}: no referrers API`,
  'discovery.referrers.empty': `${V1_1}: no referrers API`,
  'discovery.referrers.invalid-digest': `${V1_1}: no referrers API`,
  'discovery.referrers.after-delete': `${V1_1}: no referrers API`,
};

defineConformanceSuite({
  name: 'reference registry (docker-registry)',
  knownGaps: REFERENCE_KNOWN_GAPS,
  ...(referenceRegistryAvailable() ? {} : { unavailable: `${REFERENCE_REGISTRY_BIN} is not installed (apt-get install docker-registry; .ci/run does)` }),
  async start() {
    const r = await startReferenceRegistry();
    return { url: r.url, stop: () => r.stop() };
  },
});
