// RFC 7030 §4.2.2: re-enrollment renews the certificate presented in TLS, for
// the same Subject and SubjectAltName; same key = renew, new key = rekey.
import type { Context, Next } from 'koa';
import { forbidden } from '../../errors.js';
import { parseCertificate } from '../../est/certificate.js';
import { formatName, generalNamesKey, namesEqual } from '../../est/name.js';
import type { EstState } from '../state.js';

export async function checkReenrollIdentity(ctx: Context & { state: EstState }, next: Next): Promise<void> {
  const { peer, csr, label } = ctx.state;
  if (!peer) throw forbidden('simplereenroll needs the certificate being renewed as the TLS client certificate');
  if (!peer.verified) throw forbidden(`the TLS client certificate cannot be renewed: ${peer.verifyError ?? 'not trusted'}`);
  if (!peer.chain.slice(1).some((c) => label!.issuingCas.some((ca) => ca.equals(c)))) {
    throw forbidden(`the TLS client certificate was not issued by label "${label!.name}"'s CA`);
  }
  const current = parseCertificate(peer.der);
  if (!namesEqual(current.subject, csr!.subject)) {
    throw forbidden(`re-enrollment must keep the subject: certificate has "${formatName(current.subject)}", CSR has "${formatName(csr!.subject)}"`);
  }
  if (generalNamesKey(current.subjectAltNames) !== generalNamesKey(csr!.subjectAltNames)) {
    throw forbidden('re-enrollment must keep the subjectAltName of the certificate being renewed');
  }
  ctx.state.reenrollKind = current.spki.equals(csr!.spki) ? 'renew' : 'rekey';
  ctx.state.decision = label!.policy.decideReenroll(csr!, current);
  await next();
}
