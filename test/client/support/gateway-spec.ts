// A CertSpec for a certificate kept fresh at a real test gateway (Basic estuser/estpwd).
import { join } from 'node:path';
import type { CertSpec } from '../../../src/client/spec.js';
import { parseSpan } from '../../../src/util/durations.js';
import type { TestGateway } from '../../helpers/gateway.js';

export type SpecOverrides = Partial<CertSpec> & { threshold?: string; rotateKey?: boolean; retry?: string };

/** CN NAME.plant.local, files DIR/NAME.{cert,key}.pem; the policy keys given as strings. */
export function gatewaySpec(gw: TestGateway, dir: string, name: string, o: SpecOverrides = {}): CertSpec {
  const { threshold, rotateKey, retry, ...rest } = o;
  return {
    name,
    url: gw.url,
    trustFiles: [gw.caFile],
    subject: [['CN', `${name}.plant.local`]],
    subjectAltNames: [],
    ca: false,
    keyType: 'p256',
    certFile: join(dir, `${name}.cert.pem`),
    keyFile: join(dir, `${name}.key.pem`),
    policy: { threshold: parseSpan(threshold ?? '80%'), retry: parseSpan(retry ?? '4%'), jitter: parseSpan('1%'), rotateKey: rotateKey ?? true },
    method: 'simplereenroll',
    auth: { username: 'estuser', password: 'estpwd' },
    pop: 'auto',
    timeoutMs: 10_000,
    ...rest,
  };
}
