//! The pack codec: how one arrival row holds the webhooks of one group commit.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The version byte that starts an arrival's `entries`.
const PACK_V1: u8 = 1;

/// One webhook in an arrival: its journal id, when it was received, its raw body.
pub type Arrived<'a> = (Uuid, DateTime<Utc>, &'a [u8]);

/// Encodes webhooks as one arrival's `entries`: [`PACK_V1`], then per webhook its id
/// (16 bytes), received time (µs since the epoch, i64 LE), body length (u32 LE) and body.
pub fn pack<'a>(webhooks: impl IntoIterator<Item = Arrived<'a>>) -> Vec<u8> {
    let mut out = vec![PACK_V1];
    for (id, received_at, body) in webhooks {
        out.reserve(28 + body.len());
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&received_at.timestamp_micros().to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// Decodes what [`pack`] wrote; `None` if it is not that (truncated, another version).
pub fn unpack(entries: &[u8]) -> Option<Vec<Arrived<'_>>> {
    let (&version, mut rest) = entries.split_first()?;
    if version != PACK_V1 {
        return None;
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (id, tail) = rest.split_first_chunk::<16>()?;
        let (micros, tail) = tail.split_first_chunk::<8>()?;
        let (len, tail) = tail.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return None;
        }
        let (body, tail) = tail.split_at(len);
        let received_at = DateTime::from_timestamp_micros(i64::from_le_bytes(*micros))?;
        out.push((Uuid::from_bytes(*id), received_at, body));
        rest = tail;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{pack, unpack};
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    #[test]
    fn a_packed_batch_unpacks_to_the_same_webhooks() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_789_300_000_123_456).unwrap();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let webhooks = [(a, at, &b"{\"one\":1}"[..]), (b, at, &b""[..]), (c, at, "h\u{e9}llo \u{1f44b}".as_bytes())];
        let packed = pack(webhooks);
        assert_eq!(unpack(&packed).unwrap(), webhooks);
        assert_eq!(unpack(&pack([])).unwrap(), []);
    }

    #[test]
    fn anything_else_does_not_unpack() {
        let packed = pack([(Uuid::now_v7(), Utc::now(), &b"body"[..])]);
        assert!(unpack(&packed[..packed.len() - 1]).is_none(), "truncated body");
        assert!(unpack(&packed[..10]).is_none(), "truncated header");
        assert!(unpack(&[]).is_none(), "empty");
        let mut other = packed.clone();
        other[0] = 2;
        assert!(unpack(&other).is_none(), "another version");
        let mut longer = packed;
        longer[25] = 0xff;
        assert!(unpack(&longer).is_none(), "a length past the end");
    }
}
