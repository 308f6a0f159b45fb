// A CA label as the server runs it: its configuration, policy, issuer and trust.
import type { LabelConfig } from '../config/schema.js';
import type { Issuer } from '../issuer/issuer.js';
import { type LayerProfiles, LabelPolicy } from '../policy/policy.js';
import { csrAttrsBody } from './policy-csrattrs.js';

export interface Label {
  /** `default` serves the unlabelled paths. */
  name: string;
  cfg: LabelConfig;
  policy: LabelPolicy;
  issuer: Issuer;
  /**
   * DER certificates a client certificate must chain to for this label: its CA
   * chain, client_trust, and for forwarded labels the parent's chain (refreshed).
   */
  clientAnchors: Buffer[];
  /** DER of the CA certificates that issue on this label: simplereenroll needs one of them to have issued the client's certificate. */
  issuingCas: Buffer[];
  /**
   * Our own PKI as far as this label knows it (local CA chain, the parent's
   * chain): only a cmcRA certificate from here is a registration authority,
   * never one from a bootstrap or manufacturer CA in client_trust.
   */
  raAnchors: Buffer[];
  /** What never changes: from configuration and local CAs. */
  staticAnchors: Buffer[];
  staticIssuingCas: Buffer[];
  staticRaAnchors: Buffer[];
  /** Precomputed csrattrs body (base64), or undefined for 204. */
  csrAttrs: string | undefined;
}

export function makeLabel(
  name: string,
  cfg: LabelConfig,
  layer: LayerProfiles,
  issuer: Issuer,
  clientAnchors: Buffer[],
  issuingCas: Buffer[],
  raAnchors: Buffer[],
): Label {
  return {
    raAnchors,
    staticRaAnchors: raAnchors,
    name,
    cfg,
    policy: new LabelPolicy(name, cfg, layer),
    issuer,
    clientAnchors,
    issuingCas,
    staticAnchors: clientAnchors,
    staticIssuingCas: issuingCas,
    csrAttrs: csrAttrsBody(cfg),
  };
}
