//! The schema as the manifest stores it: families with their retention rules and locality
//! groups, in a small tagged binary form.
//!
//! Must not: decide schema semantics (that is `read/`); this only round-trips the struct.

use crate::error::{StorageError, StorageResult};
use crate::read::{FamilyRules, Schema};
use crate::wal::codec::{put_bytes, put_varint, Decoder};

const VERSION: u8 = 1;

pub fn encode_schema(s: &Schema) -> Vec<u8> {
    let mut out = vec![VERSION];
    put_varint(&mut out, s.families.len() as u64);
    for (name, r) in &s.families {
        put_bytes(&mut out, name);
        put_varint(&mut out, u64::from(r.max_versions));
        put_varint(&mut out, u64::from(r.min_versions));
        match r.ttl_secs {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                put_varint(&mut out, t);
            }
        }
        put_bytes(&mut out, r.locality_group.as_bytes());
    }
    out
}

pub fn decode_schema(buf: &[u8], file: &str) -> StorageResult<Schema> {
    let mut d = Decoder::new(buf, file);
    if d.u8()? != VERSION {
        return Err(StorageError::corruption(file, "unknown schema encoding"));
    }
    let n = d.varint()?;
    let mut s = Schema::default();
    for _ in 0..n {
        let name = d.bytes()?.to_vec();
        let small = |d: &mut Decoder<'_>| u32::try_from(d.varint()?).map_err(|_| d.err("u32"));
        let max_versions = small(&mut d)?;
        let min_versions = small(&mut d)?;
        let ttl_secs = match d.u8()? {
            0 => None,
            1 => Some(d.varint()?),
            _ => return Err(d.err("ttl flag")),
        };
        let lg = String::from_utf8(d.bytes()?.to_vec()).map_err(|_| d.err("locality group"))?;
        s.families.insert(
            name,
            FamilyRules {
                max_versions,
                min_versions,
                ttl_secs,
                locality_group: lg,
            },
        );
    }
    if !d.is_empty() {
        return Err(d.err("trailing bytes"));
    }
    s.validate()
        .map_err(|e| StorageError::corruption(file, format!("schema: {e}")))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_round_trips() -> StorageResult<()> {
        let mut s = Schema::default();
        s.families.insert(b"a".to_vec(), FamilyRules::new(3));
        s.families.insert(
            b"b".to_vec(),
            FamilyRules {
                max_versions: 5,
                min_versions: 1,
                ttl_secs: Some(60),
                locality_group: "cold".into(),
            },
        );
        let enc = encode_schema(&s);
        assert_eq!(decode_schema(&enc, "m")?, s);
        assert!(decode_schema(&enc[..enc.len() - 1], "m").is_err());
        Ok(())
    }
}
