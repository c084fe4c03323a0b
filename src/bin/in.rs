//! `/opt/resource/in <destination>`: fetches an image; see [`image_resource::commands::get`].
fn main() -> std::process::ExitCode {
    image_resource::commands::main(image_resource::commands::Executable::In)
}
