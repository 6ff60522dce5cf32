//! Compiles the protobuf API with protox (pure Rust, so no `protoc` is needed),
//! writes the descriptor set that server reflection serves, and generates the
//! text-field walk that checks every string of every request as it is
//! decoded (`grpc::text`), and embeds the built web pages (`pages`).

use std::{
    env,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use prost_types::{
    DescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};

const PROTOS: &[&str] = &[
    "proto/onramp/v1/common.proto",
    "proto/onramp/v1/user_admin.proto",
    "proto/onramp/v1/invitations.proto",
    "proto/onramp/v1/credentials.proto",
    "proto/onramp/v1/registration.proto",
];
const PACKAGE: &str = "onramp.v1";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // `embed_migrations!` cannot tell cargo that it read this folder.
    println!("cargo:rerun-if-changed=migrations");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(PROTOS)?;
    let fds = compiler.file_descriptor_set();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Encoded by protox itself, which keeps extension options: prost's
    // `MethodOptions` has no room for them, so `fds.encode_to_vec()` would
    // drop every `google.api.http` rule that reflection clients and a
    // transcoding gateway read.
    fs::write(
        out_dir.join("onramp_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    fs::write(out_dir.join("text_fields.rs"), text_fields(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::grpc::text::CheckedCodec")
        .compile_fds(fds)?;
    fs::write(out_dir.join("web_assets.rs"), web_assets(Path::new("web/dist"))?)?;
    Ok(())
}

/// The built pages (`web/dist`, committed, so that building the server
/// needs no Node) as a table of paths, media types and bytes compiled into
/// the binary.
fn web_assets(dist: &Path) -> Result<String, Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    let mut folders = vec![dist.to_path_buf()];
    while let Some(folder) = folders.pop() {
        println!("cargo:rerun-if-changed={}", folder.display());
        for entry in fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut table = String::from("pub static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for file in files {
        let name = file.strip_prefix(dist)?.to_string_lossy().replace('\\', "/");
        let media = match file.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            Some("ico") => "image/x-icon",
            Some("json") => "application/json",
            _ => "application/octet-stream",
        };
        let absolute = fs::canonicalize(&file)?;
        writeln!(
            table,
            "    ({name:?}, {media:?}, include_bytes!({:?})),",
            absolute.display().to_string()
        )?;
    }
    table.push_str("];\n");
    Ok(table)
}

/// `TextFields` for every message of the package. Messages that can reach
/// the server inside a request walk their strings; the rest (answers only)
/// have nothing to check.
fn text_fields(fds: &FileDescriptorSet) -> String {
    let mut messages = Vec::new();
    for file in fds.file.iter().filter(|f| f.package() == PACKAGE) {
        for message in &file.message_type {
            collect(message, "", &format!(".{PACKAGE}"), &mut messages);
        }
    }
    let inputs = request_types(fds, &messages);
    let mut out = String::new();
    for (rust, proto, message) in &messages {
        let mut body = String::new();
        if inputs.contains(proto) {
            walk(message, rust, proto, &mut body);
        }
        let _ = writeln!(
            out,
            "impl crate::grpc::text::TextFields for {rust} {{\n    \
             #[allow(unused_variables)]\n    \
             fn visit_text(&self, v: &mut crate::grpc::text::Visitor) {{\n{body}    }}\n}}"
        );
    }
    out
}

/// (Rust path, proto name, message) of `message` and those nested in it.
fn collect<'a>(
    message: &'a DescriptorProto,
    module: &str,
    parent: &str,
    out: &mut Vec<(String, String, &'a DescriptorProto)>,
) {
    if message.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let proto = format!("{parent}.{}", message.name());
    out.push((
        format!("{module}{}", camel(message.name())),
        proto.clone(),
        message,
    ));
    let inner = format!("{module}{}::", snake(message.name()));
    for nested in &message.nested_type {
        collect(nested, &inner, &proto, out);
    }
}

/// Every message a request can hold: the inputs of every method, and the
/// messages their fields reach.
fn request_types(fds: &FileDescriptorSet, messages: &[(String, String, &DescriptorProto)]) -> Vec<String> {
    let mut found: Vec<String> = fds
        .file
        .iter()
        .flat_map(|f| &f.service)
        .flat_map(|s| &s.method)
        .map(|m| m.input_type().to_owned())
        .collect();
    let mut i = 0;
    while i < found.len() {
        if let Some((_, _, message)) = messages.iter().find(|(_, p, _)| *p == found[i]) {
            for field in message.field.iter().filter(|f| f.r#type() == Type::Message) {
                if !found.iter().any(|t| t == field.type_name()) {
                    found.push(field.type_name().to_owned());
                }
            }
        }
        i += 1;
    }
    found
}

fn walk(message: &DescriptorProto, rust: &str, proto: &str, body: &mut String) {
    let proto = proto.trim_start_matches('.');
    for field in &message.field {
        let name = field.name();
        let member = ident(name);
        let qualified = format!("{proto}.{name}");
        let repeated = field.label() == Label::Repeated;
        let inner = |value: &str| match (field.r#type(), field.type_name()) {
            (Type::String, _) => Some(format!("v.text(\"{qualified}\", \"{name}\", {value})")),
            (Type::Message, ".google.protobuf.FieldMask") => Some(format!(
                "v.within(\"{name}\", |v| for (i, p) in {value}.paths.iter().enumerate() \
                 {{ v.text_at(\"{qualified}\", \"paths\", i, p) }})"
            )),
            (Type::Message, t) if t.starts_with(&format!(".{PACKAGE}.")) => {
                Some(format!("v.within(\"{name}\", |v| {value}.visit_text(v))"))
            }
            _ => None,
        };
        let Some(check) = inner("x") else { continue };
        let line = if let Some(oneof) = field.oneof_index.filter(|_| !field.proto3_optional()) {
            let oneof = &message.oneof_decl[usize::try_from(oneof).unwrap_or_default()];
            let module = rust.rsplit_once("::").map_or("", |(m, _)| m);
            let module = if module.is_empty() {
                String::new()
            } else {
                format!("{module}::")
            };
            let last = rust.rsplit("::").next().unwrap_or(rust);
            format!(
                "if let Some({module}{}::{}::{}(x)) = &self.{} {{ {check}; }}",
                snake(last),
                camel(oneof.name()),
                camel(name),
                ident(oneof.name())
            )
        } else if repeated && field.r#type() == Type::String {
            format!(
                "for (i, x) in self.{member}.iter().enumerate() {{ \
                 v.text_at(\"{qualified}\", \"{name}\", i, x); }}"
            )
        } else if repeated {
            format!(
                "for (i, x) in self.{member}.iter().enumerate() {{ \
                 v.within_at(\"{name}\", i, |v| x.visit_text(v)); }}"
            )
        } else if field.r#type() == Type::Message || field.proto3_optional() {
            format!("if let Some(x) = &self.{member} {{ {check}; }}")
        } else {
            inner(&format!("&self.{member}")).unwrap_or_default() + ";"
        };
        let _ = writeln!(body, "        {line}");
    }
}

fn camel(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn ident(name: &str) -> String {
    match name {
        "type" | "ref" | "match" | "mod" | "use" | "fn" | "in" | "impl" | "self" => format!("r#{name}"),
        other => other.to_owned(),
    }
}
