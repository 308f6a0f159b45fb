// The layer's own CA signs: smallstep's softcas, for one label.
import { forbidden } from '../errors.js';
import { ia5 } from '../est/der.js';
import { extension } from '../est/extensions.js';
import { CERTIFICATE_POLICIES, encodeCertificatePolicies } from '../est/certificate-policies.js';
import { formatName } from '../est/name.js';
import { describeSpki } from '../est/spki.js';
import type { CaMaterial } from '../pki/ca.js';
import { crlDistributionPoint, ocspAuthorityInfoAccess } from '../pki/crl.js';
import type { Ledger } from '../ledger/ledger.js';
import { Signer } from '../pki/issuance.js';
import { type KeySpec, generateKey, privateKeyDer, spkiDer } from '../pki/keys.js';
import type { EnrollRequest, Issuer, IssuedResult, ServerKeygenResult } from './issuer.js';

export interface IssueOptions {
  /** Issued because the parent was unreachable: the certificate says so. */
  islanded?: boolean;
}

/**
 * Netscape certificate comment (2.16.840.1.113730.1.13): a registered,
 * non-critical free-text extension every X.509 tool prints, so an islanded
 * certificate is recognisable without a private OID.
 */
export const NETSCAPE_COMMENT = '2.16.840.1.113730.1.13';

export interface LocalIssuerOptions {
  /** Every certificate goes on record here before it is returned. */
  ledger?: Pick<Ledger, 'recordIssuance'>;
  /** The CA's CRL URL, put in every certificate as its CRL distribution point. */
  crlUrl?: string;
  /** The CA's OCSP URL, put in every certificate as authorityInfoAccess id-ad-ocsp. */
  ocspUrl?: string;
  /** Throws when the CA may sign nothing (its parent revoked it). */
  assertUsable?: (ca: CaMaterial) => void;
}

export class LocalIssuer implements Issuer {
  readonly mode = 'issue' as const;
  private readonly signer: Signer;
  private readonly issuedBy: string;
  private readonly islandedMark: Buffer;
  /** Where revocation is published: CRL distribution point, OCSP. */
  private readonly revocationInfo: Buffer[];

  constructor(
    readonly ca: CaMaterial,
    private readonly serverKeygenSpec: KeySpec,
    private readonly o: LocalIssuerOptions = {},
  ) {
    this.signer = new Signer(ca);
    this.revocationInfo = [...(o.crlUrl ? [crlDistributionPoint(o.crlUrl)] : []), ...(o.ocspUrl ? [ocspAuthorityInfoAccess(o.ocspUrl)] : [])];
    this.issuedBy = formatName(ca.fields.subject);
    this.islandedMark = extension(NETSCAPE_COMMENT, false, ia5(`issued by ${this.issuedBy} while its parent layer was unreachable (islanded)`));
  }

  /** The chain, and replaced generations still valid: what they issued must keep chaining. */
  async caCerts(): Promise<Buffer[]> {
    return this.ca.previous?.length ? [...this.ca.chain, ...this.ca.previous] : this.ca.chain;
  }

  async enroll(req: EnrollRequest, o: IssueOptions = {}): Promise<IssuedResult> {
    return this.sign(req, req.csr.spki, o);
  }

  /** RFC 7030 §4.4: the server makes the key; subject and names come from the CSR. */
  async serverKeygen(req: EnrollRequest, o: IssueOptions = {}): Promise<ServerKeygenResult> {
    if (req.decision.ca) throw forbidden('serverkeygen does not issue CA certificates');
    const key = await generateKey(this.serverKeygenSpec);
    const issued = await this.sign(req, spkiDer(key), o);
    return { ...issued, privateKey: privateKeyDer(key) };
  }

  private async sign(req: EnrollRequest, spki: Buffer, o: IssueOptions): Promise<IssuedResult> {
    this.o.assertUsable?.(this.ca);
    const d = req.decision;
    const key = spki === req.csr.spki ? req.csr.key : describeSpki(spki);
    const cert = this.signer.issue({
      subjectDer: req.csr.subjectDer,
      spki,
      key,
      validityDays: d.validityDays,
      ...(d.maxSpanMs === undefined ? {} : { maxSpanMs: d.maxSpanMs }),
      extKeyUsage: d.extKeyUsage,
      ...(d.subjectAltNameDer ? { subjectAltNameDer: d.subjectAltNameDer } : {}),
      ...(d.ca ? { ca: d.ca } : {}),
      extraExtensions: [...(d.profileOid ? [this.profileExtension(d.profileOid)] : []), ...(o.islanded ? [this.islandedMark] : []), ...this.revocationInfo],
    });
    // on record before it leaves: a certificate the ledger cannot hold is never returned
    await this.o.ledger?.recordIssuance({
      ca: this.ca,
      der: cert.der,
      serialHex: cert.serialHex,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      subject: req.csr.subject,
      ...(d.subjectAltNameDer ? { subjectAltNameDer: d.subjectAltNameDer } : {}),
      key,
      caCert: !!d.ca,
      label: req.label,
      op: req.op,
      identity: req.identity,
      ...(req.currentCert ? { currentCert: req.currentCert } : {}),
      ...(req.relayed ? { relayed: true } : {}),
      islanded: !!o.islanded,
    });
    return { certDer: cert.der, serialHex: cert.serialHex, notAfter: cert.notAfter, issuedBy: this.issuedBy };
  }

  private readonly profileExts = new Map<string, Buffer>();
  /** The label's profile, as RFC 5280 certificatePolicies (non-critical). */
  private profileExtension(oid: string): Buffer {
    let ext = this.profileExts.get(oid);
    if (!ext) this.profileExts.set(oid, (ext = extension(CERTIFICATE_POLICIES, false, encodeCertificatePolicies([oid]))));
    return ext;
  }
}
