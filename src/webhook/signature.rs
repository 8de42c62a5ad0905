//! `X-Hub-Signature-256`: HMAC-SHA256 of the exact body bytes, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// True when `header` is `sha256=<hex>` of `body` under one of `secrets`.
pub fn signature_ok(secrets: &[Vec<u8>], body: &[u8], header: Option<&str>) -> bool {
    let Some(sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")).and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    secrets.iter().any(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    })
}

/// The header value for `body` under `secret` (tests and the webhook sender tool).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let h = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert!(signature_ok(&[b"Jefe".to_vec()], b"what do ya want for nothing?", Some(h)));
        assert_eq!(sign(b"Jefe", b"what do ya want for nothing?"), h);
    }

    #[test]
    fn near_misses_fail() {
        let secrets = [b"k".to_vec()];
        let good = sign(b"k", b"body");
        assert!(signature_ok(&secrets, b"body", Some(&good)));
        assert!(!signature_ok(&secrets, b"body ", Some(&good)));
        assert!(!signature_ok(&secrets, b"body", Some(&good[..good.len() - 2])), "truncated MAC");
        assert!(!signature_ok(&secrets, b"body", Some(good.trim_start_matches("sha256="))), "no prefix");
        assert!(!signature_ok(&secrets, b"body", None));
        assert!(!signature_ok(&[], b"body", Some(&good)));
        assert!(signature_ok(&[b"old".to_vec(), b"k".to_vec()], b"body", Some(&good)), "any configured secret");
    }

    #[test]
    fn fixture_known_answers() {
        let secret = [b"switchboard-test-app-secret".to_vec()];
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/webhooks/examples/");
        for (file, sig) in [
            ("text.json", "sha256=2a900391e5ab26896bd2544a04d654f7a612aabbde98de6dc5583f72740032d6"),
            ("image-caption.json", "sha256=a176db7eaff1182dc0b1194956f0c8aa48fe6597e94af680f2ffa1249aaeb541"),
            ("smb-message-echo.json", "sha256=dbf7a70d0d58d11369c57a41416324a406309762e76f4ee81bb4b0e93ce45386"),
        ] {
            let body = std::fs::read(format!("{dir}{file}")).expect("fixture");
            assert!(signature_ok(&secret, &body, Some(sig)), "{file}");
        }
        // Re-serialised with raw UTF-8, the bytes (and so the MAC) differ.
        let body = std::fs::read(format!("{dir}image-caption.json")).expect("fixture");
        let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let reserialised = serde_json::to_vec(&value).expect("json");
        assert!(!signature_ok(&secret, &reserialised, Some(&sign(b"switchboard-test-app-secret", &body))));
    }
}
