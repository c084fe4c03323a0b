//! `/opt/resource/out <sources>`: builds or loads an image and pushes it; see
//! [`image_resource::commands::put`].
fn main() -> std::process::ExitCode {
    image_resource::commands::main(image_resource::commands::Executable::Out)
}
