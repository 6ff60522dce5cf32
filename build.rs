//! Compiles the protobuf API with protox (pure Rust, so no `protoc` is needed)
//! and writes the descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/onramp/v1/common.proto",
    "proto/onramp/v1/user_admin.proto",
    "proto/onramp/v1/invitations.proto",
    "proto/onramp/v1/credentials.proto",
    "proto/onramp/v1/registration.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("onramp_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
