// "Did this CA issue that certificate?": the issuer name and key identifier
// match (checkIssued) and the signature verifies. One definition for the
// gateway, the issuers and CA loading.
import { X509Certificate } from 'node:crypto';

export const issuedBy = (child: X509Certificate, parent: X509Certificate): boolean =>
  child.checkIssued(parent) && child.verify(parent.publicKey);

/** The certificate's direct issuer is one of `cas`. */
export function directlyIssuedBy(der: Buffer, cas: Buffer[]): boolean {
  const x = new X509Certificate(der);
  return cas.some((c) => issuedBy(x, new X509Certificate(c)));
}
