//! `/opt/resource/in <destination>`: fetches an image (not implemented yet).
fn main() -> std::process::ExitCode {
    image_resource::commands::main(image_resource::commands::Executable::In)
}
