//! The client's TLS identity: a fresh Ed25519 key and a self-signed X.509 v3 certificate for it, as
//! Solana clients present (the server reads the public key from it and checks the CertificateVerify
//! signature, never a CA chain). Written in DER by hand: bookworm packages no certificate builder.

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// An Ed25519 key pair: its certificate (DER) and its PKCS#8 document (what rustls loads).
pub struct Identity {
    pub certificate: Vec<u8>,
    pub pkcs8: Vec<u8>,
    pub public_key: [u8; 32],
}

const OID_ED25519: [u8; 3] = [0x2b, 0x65, 0x70];
const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OID: u8 = 0x06;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_VERSION: u8 = 0xa0; // [0] EXPLICIT, constructed

/// One DER element: tag, definite length (short or long form), content.
pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    der(TAG_SEQUENCE, &parts.concat())
}

fn name(common_name: &str) -> Vec<u8> {
    let attribute = sequence(&[&der(TAG_OID, &OID_COMMON_NAME), &der(TAG_UTF8_STRING, common_name.as_bytes())]);
    sequence(&[&der(TAG_SET, &attribute)])
}

/// A bit string of whole bytes (no unused bits).
fn bit_string(bytes: &[u8]) -> Vec<u8> {
    der(TAG_BIT_STRING, &[&[0u8][..], bytes].concat())
}

/// The to-be-signed part of a self-signed certificate for `public_key`.
pub fn tbs_certificate(public_key: &[u8], serial: &[u8], common_name: &str) -> Vec<u8> {
    let algorithm = sequence(&[&der(TAG_OID, &OID_ED25519)]);
    let validity = sequence(&[
        &der(TAG_GENERALIZED_TIME, b"20000101000000Z"),
        &der(TAG_GENERALIZED_TIME, b"99991231235959Z"),
    ]);
    let spki = sequence(&[&algorithm, &bit_string(public_key)]);
    let subject = name(common_name);
    sequence(&[
        &der(TAG_VERSION, &der(TAG_INTEGER, &[2])), // v3
        &der(TAG_INTEGER, serial),
        &algorithm,
        &subject, // issuer: self-signed
        &validity,
        &subject,
        &spki,
    ])
}

impl Identity {
    pub fn generate() -> Result<Identity, String> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "Ed25519 key generation failed".to_string())?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| "Ed25519 key unreadable".to_string())?;
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(pair.public_key().as_ref());
        // a positive serial from the key, so two identities differ
        let serial = [&[0x01u8][..], &public_key[..8]].concat();
        let tbs = tbs_certificate(&public_key, &serial, "quinn-client");
        let signature = pair.sign(&tbs);
        let algorithm = sequence(&[&der(TAG_OID, &OID_ED25519)]);
        let certificate = sequence(&[&tbs, &algorithm, &bit_string(signature.as_ref())]);
        Ok(Identity { certificate, pkcs8: pkcs8.as_ref().to_vec(), public_key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519};

    #[test]
    fn der_lengths_short_and_long() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(long.len(), 304);
    }

    #[test]
    fn certificate_is_signed_by_its_key() {
        let id = Identity::generate().unwrap();
        let cert = &id.certificate;
        assert_eq!(cert[0], 0x30);
        // tbs starts after the outer header (long form, 1 length byte since the cert is < 256 bytes)
        let header = if cert[1] & 0x80 != 0 { 2 + (cert[1] & 0x7f) as usize } else { 2 };
        let tbs_len = if cert[header + 1] & 0x80 != 0 {
            2 + (cert[header + 1] & 0x7f) as usize + cert[header + 2] as usize
        } else {
            2 + cert[header + 1] as usize
        };
        let tbs = &cert[header..header + tbs_len];
        let signature = &cert[cert.len() - 64..];
        UnparsedPublicKey::new(&ED25519, id.public_key).verify(tbs, signature).unwrap();
        // the public key sits in the certificate as a 33-byte bit string
        let needle = [&[0x03u8, 33, 0][..], &id.public_key[..]].concat();
        assert!(tbs.windows(needle.len()).any(|w| w == needle.as_slice()));
    }
}
