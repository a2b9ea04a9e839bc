import nacl from 'tweetnacl';

/**
 * Standard Webhooks signing with ed25519 ("v1a"): the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`, the signature is sent base64 in
 * `webhook-signature: v1a,<sig>`. webhook-id is the event id, so a retried or duplicated push
 * carries the same id and receivers can dedupe on it.
 */
export function webhookHeaders(
  secretKey: Uint8Array,
  id: string,
  timestamp: number,
  body: string,
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  const signed = Buffer.from(`${id}.${timestamp}.${body}`, 'utf8');
  const sig = nacl.sign.detached(signed, secretKey);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1a,${Buffer.from(sig).toString('base64')}`,
  };
}

/** Receiver side: true when one of the space-separated `v1a,` signatures verifies with `publicKey`. */
export function verifyWebhook(
  publicKey: Uint8Array,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
): boolean {
  const signed = Buffer.from(`${headers.id}.${headers.timestamp}.${body}`, 'utf8');
  return headers.signature.split(' ').some((part) => {
    const [version, value] = part.split(',', 2);
    if (version !== 'v1a' || !value) return false;
    const sig = Buffer.from(value, 'base64');
    return sig.length === nacl.sign.signatureLength && nacl.sign.detached.verify(signed, sig, publicKey);
  });
}
