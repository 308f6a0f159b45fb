// RFC 7030 §4.2.2: re-enrollment renews the certificate presented in TLS, for
// the same Subject and SubjectAltName; same key = renew, new key = rekey.
// Through a registration authority (§3.7) the certificate being renewed arrives
// in the RA's RFC 9440 Client-Cert header instead; only an RA may send one.
import { X509Certificate } from 'node:crypto';
import type { Context, Next } from 'koa';
import { forbidden, malformed } from '../../errors.js';
import { type CertFields, parseCertificate } from '../../est/certificate.js';
import type { Csr } from '../../est/csr.js';
import { formatName, generalNamesKey, namesEqual } from '../../est/name.js';
import type { Label } from '../label.js';
import { directlyIssuedBy } from '../../pki/issued-by.js';
import type { EstState } from '../state.js';

/** RFC 9440 §2: `Client-Cert: :<base64 DER>:` (a structured-field byte sequence). */
function certFromHeader(value: string): Buffer {
  const m = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(value.trim());
  if (!m) throw malformed('Client-Cert header must be :base64 DER: (RFC 9440)');
  return Buffer.from(m[1]!, 'base64');
}

/** The RA vouches for possession; we still check the certificate is ours and valid. */
function checkRelayedCertificate(der: Buffer, label: Label, now = Date.now()): void {
  let x: X509Certificate;
  try {
    x = new X509Certificate(der);
  } catch {
    throw malformed('Client-Cert header does not hold a certificate');
  }
  if (!directlyIssuedBy(der, label.issuingCas)) throw forbidden(`the relayed certificate was not issued by label "${label.name}"'s CA`);
  if (Date.parse(x.validTo) < now || Date.parse(x.validFrom) > now) throw forbidden('the relayed certificate is expired or not yet valid');
}

const sameNames = (cert: CertFields, csr: Csr) =>
  namesEqual(cert.subject, csr.subject) && generalNamesKey(cert.subjectAltNames) === generalNamesKey(csr.subjectAltNames);

export async function checkReenrollIdentity(ctx: Context & { state: EstState }, next: Next): Promise<void> {
  const { peer, csr, label, identity } = ctx.state;
  const relayed = ctx.get('Client-Cert');
  let currentDer: Buffer;
  let current: CertFields;
  if (relayed) {
    if (identity?.role !== 'ra') throw forbidden('a Client-Cert header is accepted only from a registration authority (EKU id-kp-cmcRA, or registration_authorities)');
    currentDer = certFromHeader(relayed);
    checkRelayedCertificate(currentDer, label!);
    current = parseCertificate(currentDer);
  } else {
    if (!peer) throw forbidden('simplereenroll needs the certificate being renewed as the TLS client certificate');
    if (!peer.verified) throw forbidden(`the TLS client certificate cannot be renewed: ${peer.verifyError ?? 'not trusted'}`);
    // §3.7: an RA that sends no Client-Cert (libest's estproxy, any RA that is not
    // est-gateway) renews for its client: an enrollment it vouches for, within its
    // grants. Its own renewal keeps its own names.
    current = parseCertificate(peer.der);
    if (identity?.role === 'ra' && !sameNames(current, csr!)) {
      ctx.state.decision = label!.policy.decideEnroll(identity, csr!);
      ctx.state.reenrollKind = 'vouched';
      return next();
    }
    // the direct issuer, not any ancestor: a sub-CA label's certificates do not renew on its parent's label
    if (!directlyIssuedBy(peer.der, label!.issuingCas)) throw forbidden(`the TLS client certificate was not issued by label "${label!.name}"'s CA`);
    currentDer = peer.der;
  }
  if (!namesEqual(current.subject, csr!.subject)) {
    throw forbidden(`re-enrollment must keep the subject: certificate has "${formatName(current.subject)}", CSR has "${formatName(csr!.subject)}"`);
  }
  if (generalNamesKey(current.subjectAltNames) !== generalNamesKey(csr!.subjectAltNames)) {
    throw forbidden('re-enrollment must keep the subjectAltName of the certificate being renewed');
  }
  ctx.state.currentCert = currentDer;
  ctx.state.currentFields = current;
  ctx.state.reenrollKind = current.spki.equals(csr!.spki) ? 'renew' : 'rekey';
  // an RA renews on behalf of its subtree, so within its grants, as when it enrolls:
  // certificates are public, and the relayed one proves nothing about the RA's authority
  if (relayed) label!.policy.decideEnroll(identity!, csr!);
  ctx.state.decision = label!.policy.decideReenroll(csr!, current);
  await next();
}
