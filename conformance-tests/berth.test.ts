// The conformance suite against Berth: an in-process `berth serve` by default (part of npm test),
// or any registry at BERTH_CONFORMANCE_URL, e.g.
//   BERTH_CONFORMANCE_URL=http://127.0.0.1:5000 node --test dist/conformance-tests/
import { startTestRegistry } from '../server/testing.js';
import { defineConformanceSuite } from './suite.js';
import { urlTarget } from './target.js';

const url = process.env.BERTH_CONFORMANCE_URL;

if (url) {
  defineConformanceSuite(urlTarget(url));
} else {
  defineConformanceSuite({
    name: 'berth (in-process)',
    async start() {
      const registry = await startTestRegistry();
      return { url: registry.url, stop: () => registry.destroy() };
    },
  });
}
