//! A small decoder for the Kubernetes protobuf wire format, enough for the simple
//! objects `kubectl create namespace|configmap|secret|serviceaccount` send as
//! `application/vnd.kubernetes.protobuf`. Other kinds are refused with 415 so clients
//! know to send JSON.
//!
//! The envelope is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` message
//! (1: typeMeta {1: apiVersion, 2: kind}, 2: raw object bytes).

use serde_json::{Map, Value, json};

/// The protobuf media type.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// One decoded field: number and payload.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err("varint too long".to_owned())
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.skip(8)?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                let start = self.pos;
                self.skip(len)?;
                Field::Bytes(&self.buf[start..start + len])
            }
            5 => {
                self.skip(4)?;
                Field::Fixed
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        Ok(Some((number, field)))
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        if end > self.buf.len() {
            return Err("truncated field".to_owned());
        }
        self.pos = end;
        Ok(())
    }
}

fn string(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in string field".to_owned())
}

/// A map entry message (1: key, 2: value).
fn map_entry(entry: &[u8]) -> Result<(String, Vec<u8>), String> {
    let mut reader = Reader::new(entry);
    let (mut key, mut value) = (String::new(), Vec::new());
    while let Some((number, field)) = reader.next()? {
        match (number, field) {
            (1, Field::Bytes(x)) => key = string(x)?,
            (2, Field::Bytes(x)) => value = x.to_vec(),
            _ => {}
        }
    }
    Ok((key, value))
}

fn insert_str(map: &mut Map<String, Value>, field: &str, b: &[u8]) -> Result<(), String> {
    let (k, v) = map_entry(b)?;
    let entry = map
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(m) = entry.as_object_mut() {
        m.insert(k, Value::String(string(&v)?));
    }
    Ok(())
}

fn object_meta(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                m.insert("name".into(), json!(string(x)?));
            }
            (2, Field::Bytes(x)) => {
                m.insert("generateName".into(), json!(string(x)?));
            }
            (3, Field::Bytes(x)) => {
                m.insert("namespace".into(), json!(string(x)?));
            }
            (6, Field::Bytes(x)) => {
                m.insert("resourceVersion".into(), json!(string(x)?));
            }
            (11, Field::Bytes(x)) => insert_str(&mut m, "labels", x)?,
            (12, Field::Bytes(x)) => insert_str(&mut m, "annotations", x)?,
            (14, Field::Bytes(x)) => {
                let list = m.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(json!(string(x)?));
                }
            }
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes a protobuf request body into the JSON object it encodes.
pub(crate) fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("missing the k8s protobuf envelope prefix")?;
    let mut envelope = Reader::new(rest);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((number, field)) = envelope.next()? {
        match (number, field) {
            (1, Field::Bytes(type_meta)) => {
                let mut tm = Reader::new(type_meta);
                while let Some((n, f)) = tm.next()? {
                    match (n, f) {
                        (1, Field::Bytes(x)) => api_version = string(x)?,
                        (2, Field::Bytes(x)) => kind = string(x)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    let mut body_reader = Reader::new(raw);
    while let Some((number, field)) = body_reader.next()? {
        let Field::Bytes(x) = field else {
            if let (Field::Varint(flag), "ConfigMap" | "Secret", 4 | 5) =
                (&field, kind.as_str(), number)
            {
                obj.insert("immutable".into(), json!(*flag != 0));
            }
            continue;
        };
        match (kind.as_str(), number) {
            (_, 1) => {
                obj.insert("metadata".into(), object_meta(x)?);
            }
            ("Namespace" | "ServiceAccount", _) => {}
            ("ConfigMap", 2) => insert_str(&mut obj, "data", x)?,
            ("ConfigMap", 3) | ("Secret", 2) => {
                let field = if kind == "Secret" {
                    "data"
                } else {
                    "binaryData"
                };
                let (k, v) = map_entry(x)?;
                let e = obj.entry(field).or_insert_with(|| json!({}));
                if let Some(m) = e.as_object_mut() {
                    m.insert(k, json!(base64(&v)));
                }
            }
            ("Secret", 3) => {
                obj.insert("type".into(), json!(string(x)?));
            }
            ("Secret", 4) => insert_str(&mut obj, "stringData", x)?,
            (other, _) if !matches!(other, "ConfigMap" | "Secret") => {
                return Err(format!(
                    "the fake cluster cannot decode {other} from protobuf; send application/json"
                ));
            }
            _ => {}
        }
    }
    if !matches!(
        kind.as_str(),
        "Namespace" | "ServiceAccount" | "ConfigMap" | "Secret"
    ) {
        return Err(format!(
            "the fake cluster cannot decode {kind} from protobuf; send application/json"
        ));
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoder_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut body = MAGIC.to_vec();
            body.extend(tail);
            let _ = decode(&body);
        }
    }

    fn field(n: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_namespace_envelope() {
        let meta = [
            field(1, b"x"),
            field(11, &[field(1, b"a"), field(2, b"b")].concat()),
        ]
        .concat();
        let raw = [field(1, &meta), field(2, &[]), field(3, &[])].concat();
        let tm = [field(1, b"v1"), field(2, b"Namespace")].concat();
        let body = [MAGIC.to_vec(), field(1, &tm), field(2, &raw)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"a": "b"}}})
        );
    }

    #[test]
    fn refuses_other_kinds_and_garbage() {
        let tm = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let body = [MAGIC.to_vec(), field(1, &tm), field(2, &[])].concat();
        assert!(decode(&body).unwrap_err().contains("Deployment"));
        assert!(decode(b"nope").is_err());
        assert!(decode(b"k8s\0\x0a\xff").is_err());
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"f"), "Zg==");
    }
}
