// est-gateway as a library: the edge client, the wire codec, and the gateway.
export * from './client/index.js';
export { EstError, type EstErrorKind, isEstError } from './errors.js';
export { decodeEstBase64, encodeEstBase64, fromPemAll, toPem } from './est/base64.js';
export { buildCsr, type CsrOptions } from './est/csr-build.js';
export { type Csr, parseCsr, verifyCsr } from './est/csr.js';
export { buildCertsOnly, parseCertsOnly } from './est/pkcs7.js';
export { buildCsrAttrs, parseCsrAttrs, type CsrAttr } from './est/csrattrs.js';
export { buildName, formatName, parseNameString } from './est/name.js';
export { generateKey, type KeySpec } from './pki/keys.js';
export { loadConfigFile, validateConfig } from './config/load.js';
export type { Config } from './config/schema.js';
export { startGateway, type RunningGateway } from './server/gateway.js';
