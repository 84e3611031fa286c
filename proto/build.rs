//! Compiles `hookd/v1/*.proto` (the broker contract and the admin service) with protox (pure Rust, so no system `protoc`)
//! and generates prost messages and tonic stubs from the descriptor set. The
//! encoded descriptor set is written to `OUT_DIR` for server reflection.
//!
//! The server side of `HookService` is generated from a second view of the
//! same contract in which `Stream` reads `RawBrokerFrame`s: `BrokerFrame`
//! with the call left as bytes (the same wire format). A call is then decoded
//! by hookd itself, one at a time, so a call that does not decode costs only
//! that call rather than the broker's whole stream.

use std::{env, fs, path::PathBuf};

use prost::Message;
use prost_types::{FileDescriptorSet, field_descriptor_proto::Type};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["hookd/v1/hookd.proto", "hookd/v1/admin.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(protos, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("hookd_descriptor.bin"), fds.encode_to_vec())?;
    let server_view = with_raw_frames(fds.clone())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds)?;
    let server_dir = out_dir.join("server");
    fs::create_dir_all(&server_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&server_dir)
        .extern_path(".hookd.v1.RawBrokerFrame", "crate::frame::RawBrokerFrame")
        .extern_path(".hookd.v1", "crate::v1")
        .compile_fds(server_view)?;
    Ok(())
}

/// The contract with `HookService.Stream` reading `RawBrokerFrame`: a copy of
/// `BrokerFrame` whose `call` is `bytes`.
fn with_raw_frames(mut fds: FileDescriptorSet) -> Result<FileDescriptorSet, String> {
    let file = fds
        .file
        .iter_mut()
        .find(|f| f.name() == "hookd/v1/hookd.proto")
        .ok_or("no hookd/v1/hookd.proto")?;
    let mut raw = file
        .message_type
        .iter()
        .find(|m| m.name() == "BrokerFrame")
        .cloned()
        .ok_or("no BrokerFrame message")?;
    raw.name = Some("RawBrokerFrame".to_owned());
    let call = raw
        .field
        .iter_mut()
        .find(|f| f.name() == "call")
        .ok_or("no BrokerFrame.call field")?;
    call.set_type(Type::Bytes);
    call.type_name = None;
    file.message_type.push(raw);
    let stream = file
        .service
        .iter_mut()
        .find(|s| s.name() == "HookService")
        .and_then(|s| s.method.iter_mut().find(|m| m.name() == "Stream"))
        .ok_or("no HookService.Stream method")?;
    stream.input_type = Some(".hookd.v1.RawBrokerFrame".to_owned());
    Ok(fds)
}
