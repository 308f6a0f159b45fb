// GET /crl/NAME.crl: a local CA's current CRL (RFC 5280 §5, DER), or one
// fetched from the parent layer (served as the parent signed it), without
// authentication, on the HTTPS listener and on the optional plain-HTTP
// crl_listen (relying parties that fetch a CRL Distribution Point speak HTTP).
// OCSP (src/server/ocsp.ts) is answered on crl_listen too. GET /crl/ lists them (JSON), so that a layer below or a client can find the
// CRLs of its chain without a CRL Distribution Point it could not reach.
import type { Server } from 'node:http';
import { encodeCrlIndex } from '../est/crl-index.js';
import { type OcspResponder, answerOcsp } from './ocsp.js';
import type { ServedCrls } from './served-crls.js';
import { PLAIN_TEXT, type PlainHttpLimits, listenPlainHttp } from '../util/metrics-server.js';
import type { Logger } from '../util/log.js';

export const CRL_TYPE = 'application/pkix-crl';
export const CRL_INDEX_PATH = '/crl/';
const JSON_TYPE = 'application/json';
const PATH = /^\/crl\/([A-Za-z0-9_-]+)\.crl$/;

export interface CrlAnswer {
  status: number;
  type: string;
  body: Buffer | string;
}

/** The answer for a CRL path (local or fetched from the parent), or undefined for any other path (a [[proxy]] route may still serve it). */
export function answerCrl(crls: ServedCrls | undefined, path: string, logger: Logger): CrlAnswer | undefined {
  if (!crls?.any) return undefined;
  if (path === CRL_INDEX_PATH) {
    try {
      return { status: 200, type: JSON_TYPE, body: encodeCrlIndex(crls.index()) };
    } catch (err) {
      logger.error({ err }, 'cannot read or sign the CRLs');
      return { status: 503, type: PLAIN_TEXT, body: 'the CRLs are not available right now\n' };
    }
  }
  const name = PATH.exec(path)?.[1];
  if (!name) return undefined;
  if (!crls.isLocal(name)) {
    const der = crls.upstreamCrl(name);
    return der ? { status: 200, type: CRL_TYPE, body: der } : undefined;
  }
  try {
    const der = crls.localCrl(name);
    if (der) return { status: 200, type: CRL_TYPE, body: der };
  } catch (err) {
    logger.error({ err, ca: name }, 'cannot read or sign the CRL');
  }
  return { status: 503, type: PLAIN_TEXT, body: `the CRL of CA "${name}" is not available right now\n` };
}

/** Plain HTTP for relying parties: the CRLs, and OCSP (/ocsp) when the layer answers it. */
export function serveCrls(hostPort: string, crls: ServedCrls, logger: Logger, limits: PlainHttpLimits, ocsp?: OcspResponder): Promise<Server> {
  return listenPlainHttp(hostPort, (req, res) => {
    const send = (a: { status: number; type: string; body: Buffer | string; headers?: Record<string, string> }) =>
      res.writeHead(a.status, { ...a.headers, 'Content-Type': a.type, 'Content-Length': Buffer.byteLength(a.body) }).end(req.method === 'HEAD' ? undefined : a.body);
    answerOcsp(ocsp, req, req.url ?? '').then((o) => {
      if (o) return send(o);
      const path = req.url?.split('?')[0] ?? '';
      const a = req.method === 'GET' || req.method === 'HEAD' ? answerCrl(crls, path, logger) : undefined;
      if (!a) {
        res.writeHead(404, { 'Content-Type': PLAIN_TEXT }).end(`only GET /crl/ and the /crl/CA-NAME.crl it lists${ocsp ? ', and OCSP at /ocsp,' : ''} here\n`);
        return;
      }
      send(a);
    }, (err: unknown) => {
      logger.error({ err }, 'answering on crl_listen failed');
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': PLAIN_TEXT }).end('internal error\n');
    });
  }, limits);
}
