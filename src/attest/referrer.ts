import type { Descriptor } from '../oci/descriptor.js';
import { MediaType } from '../oci/mediatype.js';
import { IN_TOTO_PAYLOAD_TYPE } from './dsse.js';

/** artifactType of the referrer manifests we write: the envelope carries an in-toto statement. */
export const ATTESTATION_ARTIFACT_TYPE = IN_TOTO_PAYLOAD_TYPE;
/** Annotation naming the statement's predicate type, on referrer manifests (and on cosign's `.att` layers as `predicateType`). */
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';

/** The OCI empty config `{}` that artifact manifests use (image-spec 1.1). */
export const EMPTY_CONFIG: Descriptor = {
  mediaType: MediaType.OciEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
};
