// The layer's own CA signs: smallstep's softcas, for one label.
import { forbidden } from '../errors.js';
import { formatName } from '../est/name.js';
import { describeSpki } from '../est/spki.js';
import type { CaMaterial } from '../pki/ca.js';
import { Signer } from '../pki/issuance.js';
import { type KeySpec, generateKey, privateKeyDer, spkiDer } from '../pki/keys.js';
import type { EnrollRequest, Issuer, IssuedResult, ServerKeygenResult } from './issuer.js';

export class LocalIssuer implements Issuer {
  readonly mode = 'issue' as const;
  private readonly signer: Signer;
  private readonly issuedBy: string;

  constructor(
    readonly ca: CaMaterial,
    private readonly serverKeygenSpec: KeySpec,
  ) {
    this.signer = new Signer(ca);
    this.issuedBy = formatName(ca.fields.subject);
  }

  async caCerts(): Promise<Buffer[]> {
    return this.ca.chain;
  }

  async enroll(req: EnrollRequest): Promise<IssuedResult> {
    return this.sign(req, req.csr.spki);
  }

  /** RFC 7030 §4.4: the server makes the key; subject and names come from the CSR. */
  async serverKeygen(req: EnrollRequest): Promise<ServerKeygenResult> {
    if (req.decision.ca) throw forbidden('serverkeygen does not issue CA certificates');
    const key = await generateKey(this.serverKeygenSpec);
    const issued = this.sign(req, spkiDer(key));
    return { ...issued, privateKey: privateKeyDer(key) };
  }

  private sign(req: EnrollRequest, spki: Buffer): IssuedResult {
    const d = req.decision;
    const cert = this.signer.issue({
      subjectDer: req.csr.subjectDer,
      spki,
      key: spki === req.csr.spki ? req.csr.key : describeSpki(spki),
      validityDays: d.validityDays,
      extKeyUsage: d.extKeyUsage,
      ...(d.subjectAltNameDer ? { subjectAltNameDer: d.subjectAltNameDer } : {}),
      ...(d.ca ? { ca: d.ca } : {}),
    });
    return { certDer: cert.der, serialHex: cert.serialHex, notAfter: cert.notAfter, issuedBy: this.issuedBy };
  }
}
