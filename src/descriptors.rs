//! The descriptor set a JSON-transcoding gateway reads: Onramp's API with
//! its `google.api.http` rules, plus `google.rpc.Status` and the error
//! detail types, without which a gateway cannot turn a refusal's details
//! into a JSON body. `onramp descriptors` writes it, so a deployment never
//! needs `protoc`.

use prost::{Message, bytes::Buf};

/// Onramp's files and tonic-types' `google.rpc` files, each file once.
///
/// The sets are joined as encoded bytes, file by file: decoding them into
/// `prost_types` would drop the extension options (the HTTP rules) that
/// the gateway needs.
pub fn gateway_set() -> Vec<u8> {
    let mut names = Vec::new();
    let mut out = Vec::new();
    for set in [
        crate::pb::FILE_DESCRIPTOR_SET,
        tonic_types::pb::FILE_DESCRIPTOR_SET,
    ] {
        for file in files(set) {
            let name = prost_types::FileDescriptorProto::decode(file)
                .map(|f| f.name().to_owned())
                .unwrap_or_default();
            if names.contains(&name) {
                continue;
            }
            names.push(name);
            // Field 1 of FileDescriptorSet, length-delimited.
            out.push(0x0a);
            prost::encoding::encode_varint(file.len() as u64, &mut out);
            out.extend_from_slice(file);
        }
    }
    out
}

/// The encoded `FileDescriptorProto`s of an encoded set.
fn files(mut set: &[u8]) -> Vec<&[u8]> {
    let mut files = Vec::new();
    while set.has_remaining() {
        let Ok(key) = prost::encoding::decode_varint(&mut set) else {
            break;
        };
        let Ok(len) = prost::encoding::decode_varint(&mut set) else {
            break;
        };
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(set.len());
        if key == 0x0a {
            files.push(&set[..len]);
        }
        set = &set[len..];
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_set_has_each_file_once_with_the_http_rules_and_the_error_types() {
        let set = gateway_set();
        let decoded = prost_types::FileDescriptorSet::decode(set.as_slice());
        assert!(decoded.is_ok(), "{decoded:?}");
        let Ok(decoded) = decoded else { return };
        let names: Vec<&str> = decoded.file.iter().map(|f| f.name()).collect();
        for wanted in ["onramp/v1/user_admin.proto", "google/api/annotations.proto"] {
            assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
        }
        let rpc_types: Vec<&str> = decoded
            .file
            .iter()
            .filter(|f| f.package() == "google.rpc")
            .flat_map(|f| f.message_type.iter().map(|m| m.name()))
            .collect();
        for wanted in ["Status", "BadRequest", "ErrorInfo"] {
            assert!(
                rpc_types.contains(&wanted),
                "google.rpc.{wanted} missing: {rpc_types:?}"
            );
        }
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a file twice: {names:?}");
        // The HTTP rule of CreateOrganization, inside its method options.
        let user_admin = files(&set)
            .into_iter()
            .find(|f| f.windows(26).any(|w| w == b"onramp/v1/user_admin.proto"))
            .unwrap_or_default();
        assert!(
            user_admin.windows(17).any(|w| w == b"/v1/organizations"),
            "the google.api.http rules were dropped"
        );
    }
}
