// A pool of distinct CSRs, made with the project's own codec so the bench
// sends exactly what the edge client would.
import { buildCsr } from '../src/est/csr-build.js';
import { buildName } from '../src/est/name.js';
import { encodeEstBase64 } from '../src/est/base64.js';
import { generateKey, type KeySpec } from '../src/pki/keys.js';

/** EST bodies (base64, 64-column LF lines), one per key, CN `bench-<i>`. */
export async function makeCsrPool(keyType: KeySpec, count: number): Promise<string[]> {
  const out: string[] = [];
  // generateKey runs on libuv's pool; batches keep RSA from queueing 512 jobs at once
  const batch = 32;
  for (let start = 0; start < count; start += batch) {
    const ids = Array.from({ length: Math.min(batch, count - start) }, (_, j) => start + j);
    const bodies = await Promise.all(
      ids.map(async (i) => {
        const privateKey = await generateKey(keyType);
        const csr = buildCsr({ subject: buildName([['O', 'est-gateway bench'], ['CN', `bench-${i}`]]), privateKey });
        return encodeEstBase64(csr);
      }),
    );
    out.push(...bodies);
  }
  return out;
}
